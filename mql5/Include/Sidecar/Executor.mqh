//+------------------------------------------------------------------+
//| Executor.mqh -- order calls (CTrade for entries and stops, one    |
//| TRADE_ACTION_DEAL naming its position for every close).           |
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
//|  * the signal id rides in the comment as "sc:<signal_id>";        |
//|  * MT5 may show the position and its deal after OrderSend has     |
//|    returned DONE: the position is found from the result's deal    |
//|    (HistoryDealSelect -> DEAL_POSITION_ID, or the result's order  |
//|    on hedging), and an entry-in-flight lock holds until the       |
//|    position shows up (then it is protected) or a timeout passes;  |
//|  * closes and reduces name their position (request.position): on  |
//|    netting a reduce sent after the stop filled is refused by the  |
//|    server instead of opening a new, unprotected position;         |
//|  * a position whose close or stop move was refused, or whose      |
//|    close got no answer, backs off (per ticket, doubling from 10 s |
//|    to 5 min); nothing is sent inside the freeze level;            |
//|  * terminal, program, account and symbol trade permissions are    |
//|    checked before an entry is sent (EXEC_REFUSED).                |
//| Times are the caller's monotonic seconds (`now`).                 |
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
#define EXEC_REFUSED     4   // refused locally before sending (bad stops, no quotes, no permission)
#define EXEC_BACKOFF     5   // not sent: the position backs off after a refused close or modify
#define EXEC_FROZEN      6   // not sent: the price is within the freeze level of the SL or TP
#define EXEC_MAX_COMMENT 31

#define EXEC_ENTRY_NONE    0   // no entry in flight
#define EXEC_ENTRY_WAITING 1   // an entry was filled and its position is not visible yet
#define EXEC_ENTRY_SEEN    2   // the position showed up now (protected; the caller records it)
#define EXEC_ENTRY_TIMEOUT 3   // it did not show up in time: the lock is released

#define EXEC_BACKOFF_SLOTS    16
#define EXEC_BACKOFF_BASE_SEC 10
#define EXEC_BACKOFF_MAX_SEC  300

// Selects the position whose identifier is `id` (DEAL_POSITION_ID) and returns its ticket; 0 when
// the terminal does not show it. The identifier is the ticket of the order that opened the
// position, which is also the position's ticket until a netting reversal gives the position a new
// ticket (the identifier stays): the ticket is tried first, then every position is scanned.
ulong ExecSelectPosition(const ulong id)
  {
   if(id == 0)
      return 0;
   if(PositionSelectByTicket(id))
      return id;
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong ticket = PositionGetTicket(i);
      if(ticket != 0 && (ulong)PositionGetInteger(POSITION_IDENTIFIER) == id)
         return ticket;
     }
   return 0;
  }

class CExecutor
  {
private:
   CTrade            m_trade;
   string            m_symbol;
   ulong             m_magic;
   ulong             m_deviation;
   int               m_retries;
   bool              m_hedging;
   ENUM_ORDER_TYPE_FILLING m_filling;
   int               m_inflight_sec;
   // entry in flight
   bool              m_if_active;
   ulong             m_if_position;   // 0 = not known yet
   ulong             m_if_deal;
   string            m_if_comment;
   bool              m_if_buy;
   double            m_if_sl;
   double            m_if_tp;
   long              m_if_deadline;
   // per-ticket back-off
   ulong             m_bo_ticket[EXEC_BACKOFF_SLOTS];
   long              m_bo_until[EXEC_BACKOFF_SLOTS];
   int               m_bo_count[EXEC_BACKOFF_SLOTS];
   // stops set recently: the terminal may show the old stop for a while after DONE, and the
   // same modification is not sent again on every tick meanwhile
   ulong             m_mod_ticket[EXEC_BACKOFF_SLOTS];
   double            m_mod_sl[EXEC_BACKOFF_SLOTS];
   long              m_mod_until[EXEC_BACKOFF_SLOTS];

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
      LogWrite(LOG_TRADE, what, LogKv("retcode", IntegerToString(rc)) + (extra == "" ? "" : " " + extra));
     }

   int               BackoffSlot(const ulong ticket)
     {
      for(int i = 0; i < EXEC_BACKOFF_SLOTS; i++)
         if(m_bo_ticket[i] == ticket)
            return i;
      return -1;
     }

   // The position's stop or target is within the freeze level of the closing price (the
   // position must be selected): the server refuses to close or modify it (10029).
   bool              FrozenSelected(void)
     {
      long freeze_pts = SymbolInfoInteger(m_symbol, SYMBOL_TRADE_FREEZE_LEVEL);
      if(freeze_pts <= 0)
         return false;
      double freeze = (double)freeze_pts * SymbolInfoDouble(m_symbol, SYMBOL_POINT);
      bool buy = PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY;
      double px = SymbolInfoDouble(m_symbol, buy ? SYMBOL_BID : SYMBOL_ASK);
      double sl = PositionGetDouble(POSITION_SL);
      double tp = PositionGetDouble(POSITION_TP);
      if(sl > 0.0 && MathAbs(px - sl) <= freeze)
         return true;
      if(tp > 0.0 && MathAbs(tp - px) <= freeze)
         return true;
      return false;
     }

   // One deal closing `volume` of the position, naming it (request.position): on both account
   // types the server closes or reduces that position or refuses (POSITION_CLOSED when it is
   // gone), never opens one. The position must be selected.
   bool              SendClose(const ulong ticket, const double volume, const bool full, uint &rc, double &done_volume)
     {
      bool buy = PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY;
      MqlTradeRequest req;
      MqlTradeResult res;
      ZeroMemory(req);
      ZeroMemory(res);
      req.action = TRADE_ACTION_DEAL;
      req.position = ticket;
      req.symbol = m_symbol;
      req.volume = volume;
      req.type = buy ? ORDER_TYPE_SELL : ORDER_TYPE_BUY;
      req.price = SymbolInfoDouble(m_symbol, buy ? SYMBOL_BID : SYMBOL_ASK);
      req.deviation = m_deviation;
      req.magic = m_magic;
      req.type_filling = m_filling;
      req.comment = !full && !m_hedging ? "sc:reduce" : "";   // as the backtester's twin records it
      bool sent = m_trade.OrderSend(req, res);
      rc = res.retcode;
      done_volume = res.volume;
      return sent;
     }

   // The position an entry's result opened: its deal's DEAL_POSITION_ID when the deal is in the
   // history already (an identifier: ExecSelectPosition finds its ticket); on hedging the
   // position carries the ticket of the order that opened it.
   ulong             PositionOfResult(void)
     {
      ulong deal = m_trade.ResultDeal();
      if(deal != 0 && HistoryDealSelect(deal))
        {
         ulong id = (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
         if(id != 0)
            return id;
        }
      if(m_hedging)
         return m_trade.ResultOrder();
      return 0;
     }

   void              HoldEntry(const ulong position, const ulong deal, const string comment, const bool buy, const double sl,
                               const double tp, const long now)
     {
      m_if_active = true;
      m_if_position = position;
      m_if_deal = deal;
      m_if_comment = comment;
      m_if_buy = buy;
      m_if_sl = sl;
      m_if_tp = tp;
      m_if_deadline = now + m_inflight_sec;
     }

public:
                     CExecutor(void) : m_symbol(""), m_magic(0), m_deviation(10), m_retries(3), m_hedging(true),
                     m_filling(ORDER_FILLING_FOK), m_inflight_sec(30), m_if_active(false), m_if_position(0), m_if_deal(0),
                     m_if_comment(""), m_if_buy(true), m_if_sl(0.0), m_if_tp(0.0), m_if_deadline(0)
     {
      for(int i = 0; i < EXEC_BACKOFF_SLOTS; i++)
        {
         m_bo_ticket[i] = 0;
         m_bo_until[i] = 0;
         m_bo_count[i] = 0;
         m_mod_ticket[i] = 0;
         m_mod_sl[i] = 0.0;
         m_mod_until[i] = 0;
        }
     }

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

   // Call once the account is known (login non-zero, terminal connected): CTrade read the
   // margin mode when it was constructed, possibly before that.
   void              Init(const string symbol, const ulong magic, const ulong deviation_points, const int retries,
                          const int inflight_sec)
     {
      m_symbol = symbol;
      m_magic = magic;
      m_deviation = deviation_points;
      m_retries = retries < 0 ? 0 : retries;
      m_inflight_sec = inflight_sec < 1 ? 1 : inflight_sec;
      m_hedging = AccountInfoInteger(ACCOUNT_MARGIN_MODE) == ACCOUNT_MARGIN_MODE_RETAIL_HEDGING;
      m_filling = DetectFilling(symbol);
      m_trade.SetMarginMode();
      m_trade.SetExpertMagicNumber(magic);
      m_trade.SetDeviationInPoints(deviation_points);
      m_trade.SetTypeFilling(m_filling);
      m_trade.SetAsyncMode(false);
      m_trade.LogLevel(LOG_LEVEL_ERRORS);
     }

   bool              Hedging(void) const { return m_hedging; }

   static string     CommentFor(const string signal_id)
     {
      return ScSubstr("sc:" + signal_id, 0, EXEC_MAX_COMMENT);
     }

   // Why no entry can be sent now ("" = it can): the terminal's Algo Trading button, the
   // program's "Allow Algo Trading", the account (investor login, broker) and the symbol's
   // trade mode (disabled, close only, long or short only).
   string            TradeBlock(const bool buy)
     {
      if(TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) == 0)
         return "TERMINAL_TRADE_DISABLED";
      if(MQLInfoInteger(MQL_TRADE_ALLOWED) == 0)
         return "PROGRAM_TRADE_DISABLED";
      if(AccountInfoInteger(ACCOUNT_TRADE_ALLOWED) == 0)
         return "ACCOUNT_TRADE_DISABLED";
      if(AccountInfoInteger(ACCOUNT_TRADE_EXPERT) == 0)
         return "ACCOUNT_EXPERT_DISABLED";
      long mode = SymbolInfoInteger(m_symbol, SYMBOL_TRADE_MODE);
      if(mode == SYMBOL_TRADE_MODE_FULL || (mode == SYMBOL_TRADE_MODE_LONGONLY && buy) || (mode == SYMBOL_TRADE_MODE_SHORTONLY && !buy))
         return "";
      return "SYMBOL_TRADE_MODE";
     }

   // ---- per-ticket back-off
   bool              BackingOff(const ulong ticket, const long now)
     {
      int i = BackoffSlot(ticket);
      return i >= 0 && m_bo_until[i] > now;
     }

   // After a refusal: 10 s, doubling on each refusal in a row up to 5 min; at least a minute when
   // the market is closed or the server asks for fewer requests; 10 s inside the freeze level.
   void              BackOff(const ulong ticket, const long now, const uint rc)
     {
      int i = BackoffSlot(ticket);
      if(i < 0)
        {
         i = 0;
         for(int k = 1; k < EXEC_BACKOFF_SLOTS; k++)
            if(m_bo_until[k] < m_bo_until[i])
               i = k;
         m_bo_ticket[i] = ticket;
         m_bo_count[i] = 0;
        }
      int seconds = EXEC_BACKOFF_BASE_SEC;
      for(int k = 0; k < m_bo_count[i] && seconds < EXEC_BACKOFF_MAX_SEC; k++)
         seconds *= 2;
      if(seconds > EXEC_BACKOFF_MAX_SEC)
         seconds = EXEC_BACKOFF_MAX_SEC;
      if((rc == TRADE_RETCODE_MARKET_CLOSED || rc == TRADE_RETCODE_TOO_MANY_REQUESTS) && seconds < 60)
         seconds = 60;
      if(rc == TRADE_RETCODE_FROZEN)
         seconds = EXEC_BACKOFF_BASE_SEC;   // checked locally, nothing was refused: no doubling
      else
         m_bo_count[i]++;
      m_bo_until[i] = now + seconds;
      LogWrite(LOG_TRADE, "BACKOFF", LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("retcode", IntegerToString(rc)) +
               " " + LogKv("seconds", IntegerToString(seconds)));
     }

   void              BackOffClear(const ulong ticket)
     {
      int i = BackoffSlot(ticket);
      if(i >= 0)
        {
         m_bo_ticket[i] = 0;
         m_bo_until[i] = 0;
         m_bo_count[i] = 0;
        }
     }

   // ---- entry in flight
   bool              EntryLocked(void) const { return m_if_active; }
   // The stop of the last entry (on the tick grid, as sent); kept after the lock is released.
   double            EntrySl(void) const { return m_if_sl; }

   // Where the entry in flight stands. EXEC_ENTRY_SEEN: its position showed up now; it has been
   // protected (position = 0 when that failed and it was closed) and the lock is released.
   int               EntryState(const long now, ulong &position)
     {
      position = 0;
      if(!m_if_active)
         return EXEC_ENTRY_NONE;
      if(m_if_position == 0 && m_if_deal != 0 && HistoryDealSelect(m_if_deal))
         m_if_position = (ulong)HistoryDealGetInteger(m_if_deal, DEAL_POSITION_ID);
      ulong found = 0;
      if(m_if_position != 0)
         found = ExecSelectPosition(m_if_position);
      else
         found = FindOpened(m_if_comment);
      if(found != 0)
        {
         m_if_active = false;
         LogWrite(LOG_TRADE, "OPEN_SEEN", LogKv("position", IntegerToString((long)found)));
         position = Protect(found, m_if_buy, m_if_sl, m_if_tp, now) ? found : 0;
         return EXEC_ENTRY_SEEN;
        }
      if(now >= m_if_deadline)
        {
         m_if_active = false;
         LogWrite(LOG_TRADE, "ENTRY_IN_FLIGHT_TIMEOUT", LogKv("position", IntegerToString((long)m_if_position)) + " " +
                  LogKv("comment", m_if_comment));
         return EXEC_ENTRY_TIMEOUT;
        }
      return EXEC_ENTRY_WAITING;
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

   // Moves SL/TP. NO_CHANGES counts as success. Not sent while the position backs off or its
   // stop or target is within the freeze level.
   bool              Modify(const ulong ticket, const double sl, const double tp, const string why, const long now)
     {
      if(!PositionSelectByTicket(ticket) || BackingOff(ticket, now))
         return false;
      int digits = (int)SymbolInfoInteger(m_symbol, SYMBOL_DIGITS);
      double point = SymbolInfoDouble(m_symbol, SYMBOL_POINT);
      int slot = -1;
      for(int i = 0; i < EXEC_BACKOFF_SLOTS; i++)
         if(m_mod_ticket[i] == ticket)
            slot = i;
      // done a moment ago and the terminal has not shown it yet -- unless the position has no stop
      // now (removed since, or never shown): then it is sent again (NO_CHANGES when it is there)
      if(slot >= 0 && m_mod_until[slot] > now && MathAbs(m_mod_sl[slot] - sl) < point * 0.5 && PositionGetDouble(POSITION_SL) > 0.0)
         return true;
      if(FrozenSelected())
        {
         LogWrite(LOG_TRADE, "MODIFY_FROZEN", LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
         BackOff(ticket, now, TRADE_RETCODE_FROZEN);
         return false;
        }
      bool sent = m_trade.PositionModify(ticket, NormalizeDouble(sl, digits), tp > 0.0 ? NormalizeDouble(tp, digits) : 0.0);
      uint rc = m_trade.ResultRetcode();
      if(!sent && rc == TRADE_RETCODE_DONE)
         rc = 0;   // CTrade returned before sending: the result is the previous operation's
      if(rc == TRADE_RETCODE_DONE || rc == TRADE_RETCODE_NO_CHANGES)
        {
         LogResult("MODIFY", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("sl", DoubleToString(sl, digits)) +
                   " " + LogKv("why", why));
         BackOffClear(ticket);
         if(slot < 0)
           {
            slot = 0;
            for(int i = 1; i < EXEC_BACKOFF_SLOTS; i++)
               if(m_mod_until[i] < m_mod_until[slot])
                  slot = i;
           }
         m_mod_ticket[slot] = ticket;
         m_mod_sl[slot] = sl;
         m_mod_until[slot] = now + EXEC_BACKOFF_BASE_SEC;
         return true;
        }
      LogResult("MODIFY_REJECTED", rc, LogKv("position", IntegerToString((long)ticket)) + " " +
                LogKv("sl", DoubleToString(sl, digits)) + " " + LogKv("why", why));
      if(!Retryable(rc))
         BackOff(ticket, now, rc);
      return false;
     }

   // Closes volume of a position (the whole position when volume <= 0 or >= its volume) with one
   // deal naming the position. EXEC_BACKOFF / EXEC_FROZEN: nothing was sent.
   int               Close(const ulong ticket, const double volume, const string why, const long now)
     {
      if(!PositionSelectByTicket(ticket))
         return EXEC_REFUSED;
      if(BackingOff(ticket, now))
         return EXEC_BACKOFF;
      if(FrozenSelected())
        {
         LogWrite(LOG_TRADE, "CLOSE_FROZEN", LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
         BackOff(ticket, now, TRADE_RETCODE_FROZEN);
         return EXEC_FROZEN;
        }
      double pos_volume = PositionGetDouble(POSITION_VOLUME);
      double pos_sl = PositionGetDouble(POSITION_SL);
      double pos_tp = PositionGetDouble(POSITION_TP);
      bool full = volume <= 0.0 || volume >= pos_volume - 0.0000001;
      double send_volume = full ? pos_volume : volume;
      double vmax = SymbolInfoDouble(m_symbol, SYMBOL_VOLUME_MAX);
      if(vmax > 0.0 && send_volume > vmax + 0.0000001)
        {
         // one deal cannot exceed the symbol's maximum: close that much now, the rest next time
         send_volume = vmax;
         full = false;
        }
      uint rc = 0;
      for(int attempt = 0; attempt <= m_retries; attempt++)
        {
         // re-read on every pass: the position may be gone (SL/TP) or already reduced
         if(!PositionSelectByTicket(ticket) || PositionGetDouble(POSITION_VOLUME) < pos_volume - 0.0000001)
            return EXEC_OK;
         double done_volume = 0.0;
         bool sent = SendClose(ticket, send_volume, full, rc, done_volume);
         if(rc == TRADE_RETCODE_DONE || rc == TRADE_RETCODE_DONE_PARTIAL || rc == TRADE_RETCODE_PLACED)
           {
            LogResult(full ? "CLOSE" : "CLOSE_PARTIAL", rc, LogKv("position", IntegerToString((long)ticket)) + " " +
                      LogKv("volume", DoubleToString(done_volume, 2)) + " " + LogKv("why", why));
            BackOffClear(ticket);
            // a broker that drops the stops of a reduced netting position: put them back
            if(!full && !m_hedging && pos_sl > 0.0 && PositionSelectByTicket(ticket) && PositionGetDouble(POSITION_SL) <= 0.0 &&
               PositionGetDouble(POSITION_VOLUME) < pos_volume - 0.0000001)
               Modify(ticket, pos_sl, pos_tp, "restore after reduce", now);
            return rc == TRADE_RETCODE_DONE_PARTIAL ? EXEC_PARTIAL : EXEC_OK;
           }
         if(rc == TRADE_RETCODE_POSITION_CLOSED)
           {
            // the stop (or anything else) closed it between our read and the send
            LogResult("CLOSE_ALREADY_CLOSED", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
            return EXEC_OK;
           }
         if(Retryable(rc))
            continue;   // not executed: the next pass re-reads the position and the prices
         if(Ambiguous(rc) || !sent)
           {
            // re-read before any retry: the close may have gone through
            if(!PositionSelectByTicket(ticket))
               return EXEC_OK;
            if(PositionGetDouble(POSITION_VOLUME) < pos_volume - 0.0000001)
               return EXEC_OK;
            // a full close names its position and cannot overshoot; a partial close that timed
            // out may still execute and is never sent twice
            if(Ambiguous(rc) && full && attempt < m_retries)
               continue;
            if(Ambiguous(rc))
              {
               // no answer: not sent again on every tick (the position is re-read after the back-off)
               LogResult("CLOSE_AMBIGUOUS", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
               BackOff(ticket, now, rc);
               return EXEC_AMBIGUOUS;
              }
           }
         LogResult("CLOSE_REJECTED", rc, LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("why", why));
         BackOff(ticket, now, rc);
         return EXEC_REJECTED;
        }
      BackOff(ticket, now, rc);
      return EXEC_REJECTED;
     }

   // The stop the Guard sized against must be on the position: set it when the server left it
   // out; when that fails the position is closed (an unprotected entry is never kept).
   bool              Protect(const ulong position, const bool buy, const double sl, const double tp, const long now)
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
      if(Modify(position, sl, have_tp > 0.0 ? have_tp : tp, "protect", now))
         return true;
      BackOffClear(position);   // closing an unprotected position does not wait
      Close(position, 0.0, "unprotected", now);
      return false;
     }

   // Market entry. sl is required (the Guard sized against it), tp may be 0. When the fill is
   // reported before the terminal shows the position, `position` is what the result names (0 when
   // not known yet) and the entry-in-flight lock holds (EntryState).
   int               Open(const bool buy, const double volume, const double sl, const double tp, const string signal_id,
                          const long now, double &filled, ulong &position)
     {
      filled = 0.0;
      position = 0;
      string comment = CommentFor(signal_id);
      if(m_if_active)
        {
         LogWrite(LOG_TRADE, "ENTRY_IN_FLIGHT", LogKv("signal_id", signal_id));
         return EXEC_REFUSED;
        }
      string blocked = TradeBlock(buy);
      if(blocked != "")
        {
         LogWrite(LOG_TRADE, blocked, LogKv("signal_id", signal_id) + " " + LogKv("symbol", m_symbol));
         return EXEC_REFUSED;
        }
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
            ulong deal = m_trade.ResultDeal();
            position = PositionOfResult();
            ulong shown = ExecSelectPosition(position);
            bool visible = shown != 0;
            if(visible)
               position = shown;
            if(position == 0)
              {
               position = FindOpened(comment);
               visible = position != 0 && PositionSelectByTicket(position);
              }
            if(visible)
               filled = PositionGetDouble(POSITION_VOLUME);
            bool partial = rc == TRADE_RETCODE_DONE_PARTIAL || (filled > 0.0 && filled < volume - 0.0000001);
            LogResult(partial ? "OPEN_PARTIAL" : "OPEN", rc, LogKv("signal_id", signal_id) + " " +
                      LogKv("asked", DoubleToString(volume, 2)) + " " + LogKv("filled", DoubleToString(filled, 2)) + " " +
                      LogKv("position", IntegerToString((long)position)) + " " + LogKv("visible", visible ? "yes" : "no"));
            if(!visible)
              {
               // MT5 shows the position (and the deal) later: hold entries until it does
               HoldEntry(position, deal, comment, buy, nsl, ntp, now);
               return partial ? EXEC_PARTIAL : EXEC_OK;
              }
            if(!Protect(position, buy, nsl, ntp, now))
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
               if(!Protect(position, buy, nsl, ntp, now))
                 {
                  position = 0;
                  return EXEC_REJECTED;
                 }
               return filled < volume - 0.0000001 ? EXEC_PARTIAL : EXEC_OK;
              }
            if(FindOrder(comment) != 0)
              {
               LogResult("OPEN_IN_FLIGHT", rc, LogKv("signal_id", signal_id));
               HoldEntry(0, 0, comment, buy, nsl, ntp, now);
               return EXEC_AMBIGUOUS;
              }
            if(Ambiguous(rc))
              {
               LogResult("OPEN_AMBIGUOUS", rc, LogKv("signal_id", signal_id) + " " + LogKv("attempt", IntegerToString(attempt + 1)));
               HoldEntry(0, 0, comment, buy, nsl, ntp, now);
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
