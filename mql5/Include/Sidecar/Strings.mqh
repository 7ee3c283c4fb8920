//+------------------------------------------------------------------+
//| Strings.mqh -- the one substring call of the EA.                  |
//| StringSubstr(s, start, length): MQL5 documents length -1 (or      |
//| omitted) as "to the end of the string"; what a length of 0 or     |
//| another negative value returns depends on the terminal build      |
//| (older builds return the rest of the string). Every call that     |
//| passes a computed length goes through ScSubstr, which returns ""  |
//| for length <= 0 on every build; the two-argument form              |
//| StringSubstr(s, start) (to the end) is the same on every build.   |
//+------------------------------------------------------------------+
#ifndef SIDECAR_STRINGS_MQH
#define SIDECAR_STRINGS_MQH

string ScSubstr(const string s, const int start, const int length)
  {
   if(length <= 0 || start < 0 || start >= StringLen(s))
      return "";
   return StringSubstr(s, start, length);
  }

#endif
