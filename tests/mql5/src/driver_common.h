// Helpers shared by the C++ drivers: read inputs with the Protocol module's own flat JSON
// parser, print results as JSON with round-trip exact numbers (%.17g).
#ifndef SIDECAR_DRIVER_COMMON_H
#define SIDECAR_DRIVER_COMMON_H

#include "mql5_shim.h"

#include "Sidecar/Protocol.mqh"

inline double InD(const CJsonFlat &j, const string &path, double def)
{
   double v = def;
   if(!j.GetDouble(path, v))
      return def;
   return v;
}

inline long InL(const CJsonFlat &j, const string &path, long def)
{
   long v = def;
   if(!j.GetLong(path, v))
      return def;
   return v;
}

inline string InS(const CJsonFlat &j, const string &path, const string &def)
{
   string v = def;
   if(!j.GetString(path, v))
      return def;
   return v;
}

inline bool InB(const CJsonFlat &j, const string &path, bool def)
{
   bool v = def;
   if(!j.GetBool(path, v))
      return def;
   return v;
}

inline string Num(double v)
{
   if(!std::isfinite(v))
      return "null";
   char buf[64];
   std::snprintf(buf, sizeof(buf), "%.17g", v);
   return string(buf);
}

#endif
