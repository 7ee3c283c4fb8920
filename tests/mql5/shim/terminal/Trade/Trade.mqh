// The CTrade members Executor.mqh uses (MQL5 standard library Include/Trade/Trade.mqh), with the
// behaviour the MQL5 reference documents for them, on top of the terminal's OrderSend:
//  * the margin mode is read in the constructor (and again only by SetMarginMode): a global
//    CTrade built before the account is known keeps "netting";
//  * PositionClosePartial is for hedging accounts only: on what CTrade believes is netting it
//    returns false WITHOUT touching the last result (ResultRetcode() then still holds the
//    previous operation's retcode);
//  * PositionClose / PositionClosePartial name the position (request.position); Buy / Sell do not;
//  * under Market execution the filling is FOK if the symbol allows it, else IOC (FillingCheck);
//  * a true return only means the request was sent: the retcode tells what happened.
#ifndef SIDECAR_STUB_TRADE_MQH
#define SIDECAR_STUB_TRADE_MQH

class CTrade
{
 protected:
   MqlTradeRequest m_request;
   MqlTradeResult m_result;
   bool m_async_mode;
   ulong m_magic;
   ulong m_deviation;
   ENUM_ORDER_TYPE_FILLING m_type_filling;
   ENUM_ACCOUNT_MARGIN_MODE m_margin_mode;
   ENUM_LOG_LEVELS m_log_level;

   void ClearStructures()
   {
      ZeroMemory(m_request);
      ZeroMemory(m_result);
   }
   bool IsHedging() const { return m_margin_mode == ACCOUNT_MARGIN_MODE_RETAIL_HEDGING; }

   bool FillingCheck(const string &symbol)
   {
      m_request.type_filling = m_type_filling;
      long exe = SymbolInfoInteger(symbol, SYMBOL_TRADE_EXEMODE);
      if(exe != SYMBOL_TRADE_EXECUTION_MARKET)
         return true;
      long flags = SymbolInfoInteger(symbol, SYMBOL_FILLING_MODE);
      if(m_type_filling == ORDER_FILLING_FOK && (flags & SYMBOL_FILLING_FOK) != 0)
         return true;
      if(m_type_filling == ORDER_FILLING_IOC && (flags & SYMBOL_FILLING_IOC) != 0)
         return true;
      if((flags & SYMBOL_FILLING_FOK) != 0)
      {
         m_request.type_filling = ORDER_FILLING_FOK;
         return true;
      }
      if((flags & SYMBOL_FILLING_IOC) != 0)
      {
         m_request.type_filling = ORDER_FILLING_IOC;
         return true;
      }
      m_result.retcode = TRADE_RETCODE_INVALID_FILL;
      return false;
   }

   bool CloseRequest(const ulong ticket, const double volume, const ulong deviation)
   {
      string symbol = PositionGetString(POSITION_SYMBOL);
      ClearStructures();
      if(!FillingCheck(symbol))
         return false;
      bool buy = PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY;
      m_request.type = buy ? ORDER_TYPE_SELL : ORDER_TYPE_BUY;
      m_request.price = SymbolInfoDouble(symbol, buy ? SYMBOL_BID : SYMBOL_ASK);
      m_request.action = TRADE_ACTION_DEAL;
      m_request.position = ticket;
      m_request.symbol = symbol;
      m_request.volume = volume;
      m_request.magic = m_magic;
      m_request.deviation = deviation == ULONG_MAX ? m_deviation : deviation;
      return OrderSend(m_request, m_result);
   }

 public:
   CTrade() : m_async_mode(false), m_magic(0), m_deviation(10), m_type_filling(ORDER_FILLING_FOK),
              m_margin_mode(ACCOUNT_MARGIN_MODE_RETAIL_NETTING), m_log_level(LOG_LEVEL_ERRORS)
   {
      SetMarginMode();
      ClearStructures();
   }
   void SetExpertMagicNumber(ulong magic) { m_magic = magic; }
   void SetDeviationInPoints(ulong deviation) { m_deviation = deviation; }
   void SetTypeFilling(ENUM_ORDER_TYPE_FILLING filling) { m_type_filling = filling; }
   void SetAsyncMode(bool mode) { m_async_mode = mode; }
   void LogLevel(ENUM_LOG_LEVELS level) { m_log_level = level; }
   void SetMarginMode() { m_margin_mode = (ENUM_ACCOUNT_MARGIN_MODE)AccountInfoInteger(ACCOUNT_MARGIN_MODE); }

   bool PositionOpen(const string &symbol, ENUM_ORDER_TYPE type, double volume, double price, double sl, double tp,
                     const string &comment)
   {
      ClearStructures();
      m_request.action = TRADE_ACTION_DEAL;
      m_request.symbol = symbol;
      m_request.magic = m_magic;
      m_request.volume = volume;
      m_request.type = type;
      m_request.price = price;
      m_request.sl = sl;
      m_request.tp = tp;
      m_request.deviation = m_deviation;
      if(!FillingCheck(symbol))
         return false;
      m_request.comment = comment;
      return OrderSend(m_request, m_result);
   }
   bool Buy(double volume, const string &symbol, double price, double sl, double tp, const string &comment)
   {
      if(volume <= 0.0)
      {
         m_result.retcode = TRADE_RETCODE_INVALID_VOLUME;
         return false;
      }
      return PositionOpen(symbol, ORDER_TYPE_BUY, volume, price == 0.0 ? SymbolInfoDouble(symbol, SYMBOL_ASK) : price, sl, tp,
                          comment);
   }
   bool Sell(double volume, const string &symbol, double price, double sl, double tp, const string &comment)
   {
      if(volume <= 0.0)
      {
         m_result.retcode = TRADE_RETCODE_INVALID_VOLUME;
         return false;
      }
      return PositionOpen(symbol, ORDER_TYPE_SELL, volume, price == 0.0 ? SymbolInfoDouble(symbol, SYMBOL_BID) : price, sl, tp,
                          comment);
   }
   bool PositionClose(ulong ticket, ulong deviation = ULONG_MAX)
   {
      if(!PositionSelectByTicket(ticket))
         return false;
      return CloseRequest(ticket, PositionGetDouble(POSITION_VOLUME), deviation);
   }
   bool PositionClosePartial(ulong ticket, double volume, ulong deviation = ULONG_MAX)
   {
      if(!IsHedging())
         return false;   // documented: hedging only; the last result is left as it was
      if(!PositionSelectByTicket(ticket))
         return false;
      double have = PositionGetDouble(POSITION_VOLUME);
      return CloseRequest(ticket, have > volume ? volume : have, deviation);
   }
   bool PositionModify(ulong ticket, double sl, double tp)
   {
      if(!PositionSelectByTicket(ticket))
         return false;
      ClearStructures();
      m_request.action = TRADE_ACTION_SLTP;
      m_request.position = ticket;
      m_request.symbol = PositionGetString(POSITION_SYMBOL);
      m_request.magic = m_magic;
      m_request.sl = sl;
      m_request.tp = tp;
      return OrderSend(m_request, m_result);
   }
   virtual bool OrderSend(const MqlTradeRequest &request, MqlTradeResult &result) { return ::OrderSend(request, result); }
   virtual ~CTrade() {}
   uint ResultRetcode() const { return m_result.retcode; }
   double ResultVolume() const { return m_result.volume; }
   double ResultPrice() const { return m_result.price; }
   ulong ResultDeal() const { return m_result.deal; }
   ulong ResultOrder() const { return m_result.order; }
   string ResultRetcodeDescription() const { return "retcode " + IntegerToString((long)m_result.retcode); }
};

#endif
