// mql5_shim.h -- the MQL5 built-ins used by the logic modules (Guard, Sizing, Manager, Protocol,
// Log), provided for g++ so the same .mqh files compile and run as C++17.
//
// Only what the modules use is here. Semantics follow the MQL5 reference:
//  * string is a value type; StringSubstr/StringFind use 0-based positions, -1 = not found
//    (StringSubstr with a length <= 0 other than -1: see below, two modes);
//  * DoubleToString(x, d) prints fixed notation with d decimals ('.' always, no locale);
//  * NormalizeDouble rounds half away from zero at d decimals;
//  * MathRound rounds half away from zero.
// Strings are UTF-8 bytes here (UTF-16 code units in MQL5); the modules only index ASCII
// structure characters and copy everything else verbatim, so both behave the same.
#ifndef SIDECAR_MQL5_SHIM_H
#define SIDECAR_MQL5_SHIM_H

#include <cerrno>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

typedef std::string string;
typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef long datetime;

#ifndef EMPTY_VALUE
#define EMPTY_VALUE DBL_MAX
#endif
#ifndef WRONG_VALUE
#define WRONG_VALUE (-1)
#endif

inline int StringLen(const string &s) { return (int)s.size(); }

// length -1 (the default) = to the end, as documented. Any other length <= 0 is not documented:
// by default the shim returns "" for it; built with -DSHIM_SUBSTR_REST_ON_NONPOSITIVE it returns
// the rest of the string, as older terminal builds do. The g++ suite runs in both modes, so no
// module may depend on either (they call ScSubstr from Strings.mqh with computed lengths).
inline string StringSubstr(const string &s, int start, int length = -1)
{
   if(start < 0 || start >= (int)s.size())
      return "";
#ifdef SHIM_SUBSTR_REST_ON_NONPOSITIVE
   if(length <= 0)
      return s.substr((size_t)start);
#else
   if(length < 0)
      return s.substr((size_t)start);
#endif
   return s.substr((size_t)start, (size_t)length);
}

inline int StringFind(const string &s, const string &what, int start = 0)
{
   if(start < 0)
      start = 0;
   size_t p = s.find(what, (size_t)start);
   return p == std::string::npos ? -1 : (int)p;
}

inline ushort StringGetCharacter(const string &s, int pos)
{
   if(pos < 0 || pos >= (int)s.size())
      return 0;
   return (ushort)(uchar)s[(size_t)pos];
}

inline bool StringToUpper(string &s)
{
   for(size_t i = 0; i < s.size(); i++)
      if(s[i] >= 'a' && s[i] <= 'z')
         s[i] = (char)(s[i] - 'a' + 'A');
   return true;
}

inline bool StringToLower(string &s)
{
   for(size_t i = 0; i < s.size(); i++)
      if(s[i] >= 'A' && s[i] <= 'Z')
         s[i] = (char)(s[i] - 'A' + 'a');
   return true;
}

// MQL5: converts one UTF-16 code unit to a string. Here: a code point to UTF-8 (BMP only;
// the Protocol module combines surrogate pairs itself before calling ShimCodePointToUtf8).
inline string ShimCodePointToUtf8(int cp)
{
   string out;
   if(cp < 0x80)
      out += (char)cp;
   else if(cp < 0x800)
   {
      out += (char)(0xC0 | (cp >> 6));
      out += (char)(0x80 | (cp & 0x3F));
   }
   else if(cp < 0x10000)
   {
      out += (char)(0xE0 | (cp >> 12));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
   }
   else
   {
      out += (char)(0xF0 | (cp >> 18));
      out += (char)(0x80 | ((cp >> 12) & 0x3F));
      out += (char)(0x80 | ((cp >> 6) & 0x3F));
      out += (char)(0x80 | (cp & 0x3F));
   }
   return out;
}

inline string ShortToString(ushort c) { return ShimCodePointToUtf8((int)c); }

inline string IntegerToString(long v, int str_len = 0, ushort fill = ' ')
{
   string s = std::to_string(v);
   while((int)s.size() < str_len)
      s = string(1, (char)fill) + s;
   return s;
}

inline string DoubleToString(double v, int digits = 8)
{
   char buf[512];
   if(digits >= -16 && digits <= -1)  // scientific with -digits decimals
      std::snprintf(buf, sizeof(buf), "%.*e", -digits, v);
   else if(digits < 0 || digits > 16)
      std::snprintf(buf, sizeof(buf), "%.*e", 16, v);
   else
      std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
   return string(buf);
}

inline double StringToDouble(const string &s) { return std::strtod(s.c_str(), nullptr); }
inline long StringToInteger(const string &s) { return std::strtol(s.c_str(), nullptr, 10); }

inline double MathAbs(double v) { return std::fabs(v); }
inline double MathFloor(double v) { return std::floor(v); }
inline double MathCeil(double v) { return std::ceil(v); }
inline double MathRound(double v) { return std::round(v); }  // half away from zero
inline double MathMax(double a, double b) { return a > b ? a : b; }
inline double MathMin(double a, double b) { return a < b ? a : b; }
inline double MathPow(double b, double e) { return std::pow(b, e); }
inline double MathSqrt(double v) { return std::sqrt(v); }
inline double MathLog10(double v) { return std::log10(v); }
inline bool MathIsValidNumber(double v) { return std::isfinite(v); }

inline double NormalizeDouble(double v, int digits)
{
   if(digits < 0)
      digits = 0;
   if(digits > 8)
      digits = 8;
   double p = std::pow(10.0, digits);
   return std::round(v * p) / p;
}

inline void Print(const string &s) { std::cout << s << "\n"; }

#endif
