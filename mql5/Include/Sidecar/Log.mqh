//+------------------------------------------------------------------+
//| Log.mqh -- one line format for every event of the EA:             |
//|   SC <CATEGORY> <CODE> key=value ...                              |
//| CATEGORY: RISK, NEWS, SIDECAR, ACCOUNT, TRADE, MANAGE, CONFIG.    |
//| CODE: an upper-case reason code (DAILY_LOSS, TIMEOUT, ...), the   |
//| same style as the sidecar's reasons (CATEGORY_CONDITION k=v).     |
//| Values with spaces are quoted by LogKv.                           |
//+------------------------------------------------------------------+
#ifndef SIDECAR_LOG_MQH
#define SIDECAR_LOG_MQH

#include "Strings.mqh"

#define LOG_RISK    "RISK"
#define LOG_NEWS    "NEWS"
#define LOG_SIDECAR "SIDECAR"
#define LOG_ACCOUNT "ACCOUNT"
#define LOG_TRADE   "TRADE"
#define LOG_MANAGE  "MANAGE"
#define LOG_CONFIG  "CONFIG"

// key=value, the value quoted (with \" and \\ escaped) when it is empty or holds a space,
// quote, backslash or control character; control characters become spaces.
string LogKv(const string key, const string value)
  {
   bool quote = value == "";
   string clean = "";
   int n = StringLen(value);
   for(int i = 0; i < n; i++)
     {
      ushort c = StringGetCharacter(value, i);
      if(c < 0x20 || c == 0x7F)
        {
         clean += " ";
         quote = true;
        }
      else
         if(c == '"' || c == '\\')
           {
            clean += "\\" + ScSubstr(value, i, 1);
            quote = true;
           }
         else
           {
            if(c == ' ' || c == '=')
               quote = true;
            clean += ScSubstr(value, i, 1);
           }
     }
   return key + "=" + (quote ? "\"" + clean + "\"" : clean);
  }

string LogLine(const string category, const string code, const string detail)
  {
   string line = "SC " + category + " " + code;
   if(detail != "")
      line += " " + detail;
   return line;
  }

// Rate limit for repeated identical lines: returns true when `line` should be printed now.
struct LogThrottle
  {
   string            last_line;
   long              last_time;
   int               suppressed;
  };

void LogThrottleReset(LogThrottle &t)
  {
   t.last_line = "";
   t.last_time = 0;
   t.suppressed = 0;
  }

bool LogThrottleAllow(LogThrottle &t, const string line, const long now, const int every_sec)
  {
   if(line == t.last_line && now - t.last_time < (long)every_sec)
     {
      t.suppressed++;
      return false;
     }
   t.last_line = line;
   t.last_time = now;
   t.suppressed = 0;
   return true;
  }

void LogWrite(const string category, const string code, const string detail)
  {
   Print(LogLine(category, code, detail));
  }

#endif
