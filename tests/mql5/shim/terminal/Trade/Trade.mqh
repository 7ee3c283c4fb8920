// Stub of the CTrade members Executor.mqh uses (MQL5 standard library Include/Trade/Trade.mqh).
#ifndef SIDECAR_STUB_TRADE_MQH
#define SIDECAR_STUB_TRADE_MQH

class CTrade
{
 public:
   void SetExpertMagicNumber(ulong);
   void SetDeviationInPoints(ulong);
   void SetTypeFilling(ENUM_ORDER_TYPE_FILLING);
   void SetAsyncMode(bool);
   void LogLevel(ENUM_LOG_LEVELS);
   bool Buy(double, const string &, double, double, double, const string &);
   bool Sell(double, const string &, double, double, double, const string &);
   bool PositionClose(ulong, ulong deviation = ULONG_MAX);
   bool PositionClosePartial(ulong, double, ulong deviation = ULONG_MAX);
   bool PositionModify(ulong, double, double);
   uint ResultRetcode() const;
   double ResultVolume() const;
   string ResultRetcodeDescription() const;
};

#endif
