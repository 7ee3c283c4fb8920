//+------------------------------------------------------------------+
//| Executor.mqh -- order calls through CTrade.                       |
//|  * filling mode detected from the symbol (FOK, IOC, else RETURN   |
//|    outside Market execution);                                     |
//|  * retries only what is safe: REQUOTE / PRICE_CHANGED / PRICE_OFF |
//|    with fresh prices, bounded;                                    |
//|  * after an ambiguous result (TIMEOUT, CONNECTION, no retcode)    |
//|    the position (or an order in flight) is looked up by magic +   |
//|    comment before anything is sent again;                         |
//|  * partial fills (DONE_PARTIAL) are accepted, never chased;       |
//|  * the signal id rides in the comment as "sc:<signal_id>".        |
//| MQL5-only file (terminal includes, CTrade).                       |
//+------------------------------------------------------------------+
#ifndef SIDECAR_EXECUTOR_MQH
#define SIDECAR_EXECUTOR_MQH

#include <Trade\Trade.mqh>
#include "Log.mqh"

#define EXEC_OK          0
#define EXEC_PARTIAL     1   // part of the volume filled; the rest is not chased
#define EXEC_REJECTED    2   // the server refused; not retried
#define EXEC_AMBIGUOUS   3   // no answer and nothing found: state unknown, do not resend now
#define EXEC_REFUSED     4   // refused locally before sending (bad stops, no quotes)
#define EXEC_MAX_COMMENT 31

class CExecutor
  {
private:
   CTrade            m_trade;
   string            m_symbol;
   ulong             m_magic;
   int               m_retries;
   bool              m_hedging;

   bool              Retryable(const uint rc)
     {
      return rc == TRADE_RETCODE_REQUOTE || rc == TRADE_RETCODE_PRICE_CHANGED || rc == TRADE_RETCODE_PRICE_OFF;
     }

   bool              Ambiguous(const uint rc)
     {
      return rc == 0 || rc == TRADE_RETCODE_TIMEOUT || rc == TRADE_RETCODE_CONNECTION;
     }

   void              LogResult(const string what, const uint rc, const string extra)
     {
      LogWrite(LOG_TRADE, what, LogKv("retcode", IntegerToString(rc)) + " " +
               LogKv("desc", m_trade.ResultRetcodeDescription()) + (extra == "" ? "" : " " + extra));
     }

public:
                     CExecutor(void) : m_symbol(""), m_magic(0), m_retries(3), m_hedging(true) {}

   ENUM_ORDER_TYPE_FILLING DetectFilling(const string symbol)
     {
      long modes = SymbolInfoInteger(symbol, SYMBOL_FILLING_MODE);
      long exe = SymbolInfoInteger(symbol, SYMBOL_TRADE_EXEMODE);
      if((modes & SYMBOL_FILLING_FOK) != 0)
         return ORDER_FILLING_FOK;
      if((modes & SYMBOL_FILLING_IOC) != 0)
         return ORDER_FILLING_IOC;
      if(exe != SYMBOL_TRADE_EXECUTION_MARKET)
         return ORDER_FILLING_RETURN;
      LogWrite(LOG_CONFIG, "FILLING_UNKNOWN", LogKv("symbol", symbol) + " " + LogKv("modes", IntegerToString(modes)));
      return ORDER_FILLING_FOK;
     }

   void              Init(const string symbol, const ulong magic, const ulong deviation_points, const int retries)
     {
      m_symbol = symbol;
      m_magic = magic;
      m_retries = retries < 0 ? 0 : retries;
      m_hedging = AccountInfoInteger(ACCOUNT_MARGIN_MODE) == ACCOUNT_MARGIN_MODE_RETAIL_HEDGING;
      m_trade.SetExpertMagicNumber(magic);
      m_trade.SetDeviationInPoints(deviation_points);
      m_trade.SetTypeFilling(DetectFilling(symbol));
      m_trade.SetAsyncMode(false);
      m_trade.LogLevel(LOG_LEVEL_ERRORS);
     }

   static string     CommentFor(const string signal_id)
     {
      return StringSubstr("sc:" + signal_id, 0, EXEC_MAX_COMMENT);
     }

   // Our open position on the symbol carrying this comment (0 = none).
   ulong             FindPosition(const string comment)
     {
      for(int i = PositionsTotal() - 1; i >= 0; i--)
        {
         ulong ticket = PositionGetTicket(i);
         if(ticket == 0)
            continue;
         if(PositionGetString(POSITION_SYMBOL) == m_symbol && (ulong)PositionGetInteger(POSITION_MAGIC) == m_magic &&
            PositionGetString(POSITION_COMMENT) == comment)
            return ticket;
        }
      return 0;
     }

   // An order of ours for the symbol with this comment still in flight (0 = none).
   ulong             FindOrder(const string comment)
     {
      for(int i = OrdersTotal() - 1; i >= 0; i--)
        {
         ulong ticket = OrderGetTicket(i);
         if(ticket == 0)
            continue;
         if(OrderGetString(ORDER_SYMBOL) == m_symbol && (ulong)OrderGetInteger(ORDER_MAGIC) == m_magic &&
            OrderGetString(ORDER_COMMENT) == comment)
            return ticket;
        }
      return 0;
     }

   // Market entry. sl is required (the Guard sized against it), tp may be 0.
   int               Open(const bool buy, const double volume, const double sl, const double tp, const string signal_id,
                          double &filled, ulong &position)
     {
      filled = 0.0;
      position = 0;
      string comment = CommentFor(signal_id);
      int digits = (int)SymbolInfoInteger(m_symbol, SYMBOL_DIGITS);
      double point = SymbolInfoDouble(m_symbol, SYMBOL_POINT);
      long stops = SymbolInfoInteger(m_symbol, SYMBOL_TRADE_STOPS_LEVEL);
      double nsl = NormalizeDouble(sl, digits);
      double ntp = tp > 0.0 ? NormalizeDouble(tp, digits) : 0.0;
      for(int attempt = 0; attempt <= m_retries; attempt++)
        {
         MqlTick tick;
         if(!SymbolInfoTick(m_symbol, tick) || tick.bid <= 0.0 || tick.ask <= 0.0)
           {
            LogWrite(LOG_TRADE, "NO_QUOTES", LogKv("symbol", m_symbol));
            return EXEC_REFUSED;
           }
         double price = buy ? tick.ask : tick.bid;
         double ref = buy ? tick.bid : tick.ask;   // stops are checked against the closing price
         double min_dist = (double)stops * point;
         bool stops_ok = buy ? (ref - nsl >= min_dist && (ntp == 0.0 || ntp - ref >= min_dist))
                         : (nsl - ref >= min_dist && (ntp == 0.0 || ref - ntp >= min_dist));
         if(!stops_ok || (buy ? nsl >= ref : nsl <= ref))
           {
            // never widen a stop to make an order pass: the risk was sized on this one
            LogWrite(LOG_TRADE, "BAD_STOPS", LogKv("side", buy ? "buy" : "sell") + " " + LogKv("price", DoubleToString(price, digits)) +
                     " " + LogKv("sl", DoubleToString(nsl, digits)) + " " + LogKv("tp", DoubleToString(ntp, digits)) + " " +
                     LogKv("stops_level", IntegerToString(stops)));
            return EXEC_REFUSED;
           }
         ResetLastError();
         bool sent = buy ? m_trade.Buy(volume, m_symbol, price, nsl, ntp, comment)
                     : m_trade.Sell(volume, m_symbol, price, nsl, ntp, comment);
         uint rc = m_trade.ResultRetcode();
         if(rc == TRADE_RETCODE_DONE || rc == TRADE_RETCODE_DONE_PARTIAL || rc == TRADE_RETCODE_PLACED)
           {
            filled = m_trade.ResultVolume();
            position = FindPosition(comment);
            if(position != 0 && PositionSelectByTicket(position))
               filled = PositionGetDouble(POSITION_VOLUME);
            bool partial = rc == TRADE_RETCODE_DONE_PARTIAL || (filled > 0.0 && filled < volume - 0.0000001);
            LogResult(partial ? "OPEN_PARTIAL" : "OPEN", rc, LogKv("signal_id", signal_id) + " " +
                      LogKv("asked", DoubleToString(volume, 2)) + " " + LogKv("filled", DoubleToString(filled, 2)) + " " +
                      LogKv("position", IntegerToString((long)position)));
            return partial ? EXEC_PARTIAL : EXEC_OK;
           }
         if(Retryable(rc))
           {
            LogResult("OPEN_RETRY", rc, LogKv("attempt", IntegerToString(attempt + 1)));
            continue;   // fresh prices on the next pass
           }
         if(Ambiguous(rc) || !sent)
           {
            // the order may have reached the server: look before sending anything again
            position = FindPosition(comment);
            if(position != 0 && PositionSelectByTicket(position))
              {
               filled = PositionGetDouble(POSITION_VOLUME);
               LogResult("OPEN_FOUND", rc, LogKv("signal_id", signal_id) + " " + LogKv("position", IntegerToString((long)position)));
               return filled < volume - 0.0000001 ? EXEC_PARTIAL : EXEC_OK;
              }
            if(FindOrder(comment) != 0)
              {
               LogResult("OPEN_IN_FLIGHT", rc, LogKv("signal_id", signal_id));
               return EXEC_AMBIGUOUS;
              }
            if(Ambiguous(rc))
              {
               LogResult("OPEN_AMBIGUOUS", rc, LogKv("signal_id", signal_id) + " " + LogKv("attempt", IntegerToString(attempt + 1)));
               if(attempt < m_retries)
                  continue;   // nothing on the server: sending again cannot duplicate
               return EXEC_AMBIGUOUS;
              }
           }
         LogResult("OPEN_REJECTED", rc, LogKv("signal_id", signal_id) + " " + LogKv("last_error", IntegerToString(GetLastError())));
         return EXEC_REJECTED;
        }
      LogWrite(LOG_TRADE, "OPEN_GAVE_UP", LogKv("signal_id", signal_id) + " " + LogKv("attempts", IntegerToString(m_retries + 1)));
      return EXEC_REJECTED;
     }

   // Closes volume of a position (the whole position when volume >= its volume).
   int               Close(const ulong ticket, const double volume, const string why)
     {
      if(!PositionSelectByTicket(ticket))
         return EXEC_REFUSED;
      double pos_volume = PositionGetDouble(POSITION_VOLUME);
      bool full = volume <= 0.0 || volume >= pos_volume - 0.0000001;
      for(int attempt = 0; attempt <= m_retries; attempt++)
        {
         bool sent = false;
         if(full)
            sent = m_trade.PositionClose(ticket);
         else
            if(m_hedging)
               sent = m_trade.PositionClosePartial(ticket, volume);
            else
              {
               // netting: reduce with an opposite deal
               ENUM_POSITION_TYPE type = (ENUM_POSITION_TYPE)PositionGetInteger(POSITION_TYPE);
               sent = type == POSITION_TYPE_BUY ? m_trade.Sell(volume, m_symbol, 0.0, 0.0, 0.0, "sc:reduce")
                      : m_trade.Buy(volume, m_symbol, 0.0, 0.0, 0.0, "sc:reduce");
              }
         uint rc = m_trade.ResultRetcode();
         if(rc == TRADE_RETCODE_DONE || rc == TRADE_RETCODE_DONE_PARTIAL || rc == TRADE_RETCODE_PLACED)
           {
            LogResult(full ? "CLOSE" : "CLOSE_PARTIAL", rc, LogKv("position", IntegerToString((long)ticket)) + " " +
                      LogKv("volume", DoubleToString(full ? pos_volume : volume, 2)) + " " + LogKv("why", why));
            return rc == TRADE_RETCODE_DONE_PARTIAL ? EXEC_PARTIAL : EXEC_OK;
           }
         if(Retryable(rc))
            continue;
         if(Ambiguous(rc) || !sent)
           {
            // re-read before any retry: the close may have gone through
            if(!PositionSelectByTicket(ticket))
               return EXEC_OK;
            double now_volume = PositionGetDouble(POSITION_VOLUME);
            if(now_volume < pos_volume - 0.0000001)
               return EXEC_OK;
            if(Ambiguous(rc) && attempt < m_retries)
               continue;
           }
         LogResult("CLOSE_REJECTED", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
         return rc == 0 ? EXEC_AMBIGUOUS : EXEC_REJECTED;
        }
      return EXEC_REJECTED;
     }

   // Moves SL/TP. NO_CHANGES counts as success.
   bool              Modify(const ulong ticket, const double sl, const double tp, const string why)
     {
      if(!PositionSelectByTicket(ticket))
         return false;
      int digits = (int)SymbolInfoInteger(m_symbol, SYMBOL_DIGITS);
      m_trade.PositionModify(ticket, NormalizeDouble(sl, digits), tp > 0.0 ? NormalizeDouble(tp, digits) : 0.0);
      uint rc = m_trade.ResultRetcode();
      if(rc == TRADE_RETCODE_DONE || rc == TRADE_RETCODE_NO_CHANGES)
        {
         LogResult("MODIFY", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("sl", DoubleToString(sl, digits)) +
                   " " + LogKv("why", why));
         return true;
        }
      LogResult("MODIFY_REJECTED", rc, LogKv("position", IntegerToString((long)ticket)) + " " +
                LogKv("sl", DoubleToString(sl, digits)) + " " + LogKv("why", why));
      return false;
     }
  };

#endif
