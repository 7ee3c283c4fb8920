//+------------------------------------------------------------------+
//| Executor.mqh -- order calls through CTrade.                       |
//|  * filling mode detected from the symbol (FOK, IOC, else RETURN   |
//|    outside Market execution);                                     |
//|  * retries only what is safe: REQUOTE / PRICE_CHANGED / PRICE_OFF |
//|    with fresh prices, bounded;                                    |
//|  * after an ambiguous result (TIMEOUT, CONNECTION, no retcode)    |
//|    the position (or an order in flight) is looked up; an entry or |
//|    a partial close is never sent again (it may still execute);    |
//|  * the stop is required: refused when the symbol does not allow   |
//|    SL on orders (CTrade would silently drop it), set or the       |
//|    position closed when it is missing after the fill;             |
//|  * partial fills (DONE_PARTIAL) are accepted, never chased;       |
//|  * the signal id rides in the comment as "sc:<signal_id>".        |
//| MQL5-only file (terminal includes, CTrade).                       |
//+------------------------------------------------------------------+
#ifndef SIDECAR_EXECUTOR_MQH
#define SIDECAR_EXECUTOR_MQH

#include <Trade\Trade.mqh>
#include "Log.mqh"
#include "Sizing.mqh"

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

   // The position an entry opened: the one carrying its comment, else -- the Guard lets an entry
   // through only while the EA has no position on the symbol, and brokers may rewrite comments --
   // any position of ours on the symbol (0 = none).
   ulong             FindOpened(const string comment)
     {
      ulong found = FindPosition(comment);
      if(found != 0)
         return found;
      for(int i = PositionsTotal() - 1; i >= 0; i--)
        {
         ulong ticket = PositionGetTicket(i);
         if(ticket != 0 && PositionGetString(POSITION_SYMBOL) == m_symbol && (ulong)PositionGetInteger(POSITION_MAGIC) == m_magic)
            return ticket;
        }
      return 0;
     }

   // An order of ours for the symbol still in flight (0 = none); the comment is not required to
   // match for the same reason as in FindOpened.
   ulong             FindOrder(const string comment)
     {
      ulong any = 0;
      for(int i = OrdersTotal() - 1; i >= 0; i--)
        {
         ulong ticket = OrderGetTicket(i);
         if(ticket == 0)
            continue;
         if(OrderGetString(ORDER_SYMBOL) == m_symbol && (ulong)OrderGetInteger(ORDER_MAGIC) == m_magic)
           {
            if(OrderGetString(ORDER_COMMENT) == comment)
               return ticket;
            any = ticket;
           }
        }
      return any;
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

   // Closes volume of a position (the whole position when volume >= its volume).
   int               Close(const ulong ticket, const double volume, const string why)
     {
      if(!PositionSelectByTicket(ticket))
         return EXEC_REFUSED;
      double pos_volume = PositionGetDouble(POSITION_VOLUME);
      double pos_sl = PositionGetDouble(POSITION_SL);
      double pos_tp = PositionGetDouble(POSITION_TP);
      bool full = volume <= 0.0 || volume >= pos_volume - 0.0000001;
      for(int attempt = 0; attempt <= m_retries; attempt++)
        {
         // re-read on every pass: the position may be gone (SL/TP) or already reduced, and a
         // netting reduce sent for a position that is gone would open a new, unprotected one
         if(!PositionSelectByTicket(ticket) || PositionGetDouble(POSITION_VOLUME) < pos_volume - 0.0000001)
            return EXEC_OK;
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
            // a netting reduce carries no stops: put them back if the remainder lost them
            if(!full && !m_hedging && pos_sl > 0.0 && PositionSelectByTicket(ticket) && PositionGetDouble(POSITION_SL) <= 0.0)
               Modify(ticket, pos_sl, pos_tp, "restore after reduce");
            return rc == TRADE_RETCODE_DONE_PARTIAL ? EXEC_PARTIAL : EXEC_OK;
           }
         if(Retryable(rc))
            continue;   // not executed: the next pass re-reads the position first
         if(Ambiguous(rc) || !sent)
           {
            // re-read before any retry: the close may have gone through
            if(!PositionSelectByTicket(ticket))
               return EXEC_OK;
            if(PositionGetDouble(POSITION_VOLUME) < pos_volume - 0.0000001)
               return EXEC_OK;
            // a full close names its position and cannot overshoot; a partial close (or a netting
            // reduce) that timed out may still execute and is never sent twice
            if(Ambiguous(rc) && full && attempt < m_retries)
               continue;
            if(Ambiguous(rc))
              {
               LogResult("CLOSE_AMBIGUOUS", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
               return EXEC_AMBIGUOUS;
              }
           }
         LogResult("CLOSE_REJECTED", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
         return EXEC_REJECTED;
        }
      return EXEC_REJECTED;
     }

   // The stop the Guard sized against must be on the position: set it when the server left it
   // out; when that fails the position is closed (an unprotected entry is never kept).
   bool              Protect(const ulong position, const bool buy, const double sl, const double tp)
     {
      if(!PositionSelectByTicket(position))
         return true;
      double have = PositionGetDouble(POSITION_SL);
      double point = SymbolInfoDouble(m_symbol, SYMBOL_POINT);
      if(have > 0.0 && (buy ? have >= sl - point * 0.5 : have <= sl + point * 0.5))
         return true;
      double have_tp = PositionGetDouble(POSITION_TP);
      LogWrite(LOG_TRADE, "STOP_MISSING", LogKv("position", IntegerToString((long)position)) + " " +
               LogKv("sl", DoubleToString(have, 8)) + " " + LogKv("wanted", DoubleToString(sl, 8)));
      if(Modify(position, sl, have_tp > 0.0 ? have_tp : tp, "protect"))
         return true;
      Close(position, 0.0, "unprotected");
      return false;
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
      double tick_size = SymbolInfoDouble(m_symbol, SYMBOL_TRADE_TICK_SIZE);
      long stops = SymbolInfoInteger(m_symbol, SYMBOL_TRADE_STOPS_LEVEL);
      long order_mode = SymbolInfoInteger(m_symbol, SYMBOL_ORDER_MODE);
      // CTrade silently sends the order WITHOUT its stop when the symbol does not allow SL on orders
      if((order_mode & SYMBOL_ORDER_SL) == 0)
        {
         LogWrite(LOG_TRADE, "SL_NOT_ALLOWED", LogKv("symbol", m_symbol) + " " + LogKv("order_mode", IntegerToString(order_mode)));
         return EXEC_REFUSED;
        }
      // on the tick grid, toward the entry: the stop is never wider than the one sized
      double nsl = SizingEntryPriceToTick(sl, tick_size, digits, buy);
      double ntp = tp > 0.0 && (order_mode & SYMBOL_ORDER_TP) != 0 ? SizingEntryPriceToTick(tp, tick_size, digits, !buy) : 0.0;
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
            position = FindOpened(comment);
            if(position != 0 && PositionSelectByTicket(position))
               filled = PositionGetDouble(POSITION_VOLUME);
            bool partial = rc == TRADE_RETCODE_DONE_PARTIAL || (filled > 0.0 && filled < volume - 0.0000001);
            LogResult(partial ? "OPEN_PARTIAL" : "OPEN", rc, LogKv("signal_id", signal_id) + " " +
                      LogKv("asked", DoubleToString(volume, 2)) + " " + LogKv("filled", DoubleToString(filled, 2)) + " " +
                      LogKv("position", IntegerToString((long)position)));
            if(position != 0 && !Protect(position, buy, nsl, ntp))
              {
               position = 0;
               return EXEC_REJECTED;
              }
            return partial ? EXEC_PARTIAL : EXEC_OK;
           }
         if(Retryable(rc))
           {
            LogResult("OPEN_RETRY", rc, LogKv("attempt", IntegerToString(attempt + 1)));
            continue;   // not executed: fresh prices on the next pass
           }
         if(Ambiguous(rc) || !sent)
           {
            // the order may have reached the server: look, and never send it again -- an order
            // that timed out can still execute after we gave up on it
            position = FindOpened(comment);
            if(position != 0 && PositionSelectByTicket(position))
              {
               filled = PositionGetDouble(POSITION_VOLUME);
               LogResult("OPEN_FOUND", rc, LogKv("signal_id", signal_id) + " " + LogKv("position", IntegerToString((long)position)));
               if(!Protect(position, buy, nsl, ntp))
                 {
                  position = 0;
                  return EXEC_REJECTED;
                 }
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
               return EXEC_AMBIGUOUS;
              }
           }
         LogResult("OPEN_REJECTED", rc, LogKv("signal_id", signal_id) + " " + LogKv("last_error", IntegerToString(GetLastError())));
         return EXEC_REJECTED;
        }
      LogWrite(LOG_TRADE, "OPEN_GAVE_UP", LogKv("signal_id", signal_id) + " " + LogKv("attempts", IntegerToString(m_retries + 1)));
      return EXEC_REJECTED;
     }
  };

#endif
