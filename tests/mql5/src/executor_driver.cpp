// Executor.mqh (and Transport.mqh) run against the behavioural fake of the terminal.
//   executor_driver <scenario>  -> lines "RESULT {json}" on stdout (the modules' log lines too).
// The build translates the MQL5-only files first (test_mql5_terminal.py) and force-includes
// terminal_fake.h, so every terminal call below goes to the fake.
#include <cstring>

#include "Sidecar/Executor.mqh"
#include "Sidecar/Transport.mqh"

#include "fake_helpers.h"

static void Init(CExecutor &ex) { ex.Init("EURUSD", FAKE_MAGIC, 10, 3, 30); }

// 1. The fill is reported before the terminal shows the position (hedging: the result's order
//    names it); the server dropped the stop. The lock holds, then the position is protected.
static void OpenDelayed(long margin_mode, int pos_delay, int deal_delay)
{
   Setup(margin_mode, pos_delay, deal_delay);
   CExecutor ex;
   Init(ex);
   double filled = 0.0;
   ulong position = 0;
   int rc = OpenBuy(ex, 0.10, "sig-1", filled, position);
   // a broker that fills market orders without their stops
   for(FakePosition &p : g_fk.srv_positions)
      p.sl = 0.0;
   ulong server_ticket = g_fk.srv_positions.empty() ? 0 : g_fk.srv_positions[0].ticket;
   string states = "[";
   ulong seen = 0;
   for(int i = 0; i < 6; i++)
   {
      FakeTick();
      ulong p = 0;
      int st = ex.EntryState(Now(), p);
      states += (i ? "," : "") + IntegerToString(st);
      if(st == EXEC_ENTRY_SEEN)
         seen = p;
   }
   states += "]";
   double sl_now = PositionSelectByTicket(server_ticket) ? PositionGetDouble(POSITION_SL) : -1.0;
   Result("{\"rc\":" + IntegerToString(rc) + ",\"position_at_open\":" + IntegerToString((long)position) +
          ",\"server_ticket\":" + IntegerToString((long)server_ticket) + ",\"states\":" + states +
          ",\"seen\":" + IntegerToString((long)seen) + ",\"sl\":" + N(sl_now) + ",\"wanted_sl\":" +
          N(g_fk.Sym("EURUSD").ask - 0.0030) + ",\"sltp_sends\":" + IntegerToString(SendsFor(TRADE_ACTION_SLTP)) + "}");
}

// 1. A second entry while the first one's position is not visible yet is not sent.
static void SecondEntryInFlight()
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 5, 5);
   CExecutor ex;
   Init(ex);
   double filled = 0.0;
   ulong position = 0;
   int rc1 = OpenBuy(ex, 0.10, "sig-1", filled, position);
   FakeTick();
   int rc2 = OpenBuy(ex, 0.10, "sig-2", filled, position);
   bool locked = ex.EntryLocked();
   int deal_sends = SendsFor(TRADE_ACTION_DEAL);
   // the lock ends when the position shows, or after the timeout when it never does
   g_fk.pos_delay = 1000;
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 1000, 1000);
   CExecutor ex2;
   Init(ex2);
   OpenBuy(ex2, 0.10, "sig-3", filled, position);
   string states = "[";
   for(int i = 0; i < 35; i++)
   {
      FakeTick();
      ulong p = 0;
      int st = ex2.EntryState(Now(), p);
      if(i == 5 || i == 34)
         states += (i == 5 ? "" : ",") + IntegerToString(st);
   }
   states += "]";
   Result("{\"rc1\":" + IntegerToString(rc1) + ",\"rc2\":" + IntegerToString(rc2) + ",\"locked\":" + B(locked) +
          ",\"deal_sends\":" + IntegerToString(deal_sends) + ",\"states\":" + states + ",\"after_timeout_locked\":" + B(ex2.EntryLocked()) + "}");
}

// 3. Netting: the stop fills between the EA's read of the position and its reduce.
static void NettingReduce(bool stop_fills_first)
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_NETTING, 0, 0);
   CExecutor ex;
   Init(ex);
   ulong ticket = SeedPosition(0.20, 1.09700);
   g_fk.stop_fill_before_next_send = stop_fills_first;
   int rc = ex.Close(ticket, 0.10, "partial", Now());
   FakeTick();
   Result("{\"rc\":" + IntegerToString(rc) + ",\"positions\":" + ServerPositions() + ",\"named\":" +
          B(!g_fk.sends.empty() && g_fk.sends.back().request.position == ticket) + "}");
}

// 2. CTrade built before the account was known (login 0 reads as netting); the account is hedging.
static void HedgingPartialAfterLateLogin()
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 0, 0);
   g_fk.login = 0;
   CExecutor ex;   // as the EA's global: constructed before OnInit
   g_fk.login = 5550001;
   Init(ex);
   double filled = 0.0;
   ulong position = 0;
   OpenBuy(ex, 0.20, "sig-1", filled, position);
   int rc = ex.Close(position, 0.10, "partial", Now());
   Result("{\"rc\":" + IntegerToString(rc) + ",\"positions\":" + ServerPositions() + "}");
}

// 4. A close refused by the server is not sent again on every tick: it backs off per ticket.
static void CloseBackoff(uint retcode, bool market_closed, long freeze_points)
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 0, 0);
   CExecutor ex;
   Init(ex);
   ulong ticket = SeedPosition(0.10, 1.09990);
   ulong other = SeedPosition(0.10, 1.09700);
   g_fk.Sym("EURUSD").freeze_level = freeze_points;
   g_fk.market_open = !market_closed;
   if(retcode != 0)
      for(int i = 0; i < 100; i++)
         g_fk.script.push_back(retcode);
   string rcs = "[";
   int sent_first_minute = 0;
   for(int i = 0; i < 60; i++)
   {
      int before = Sends();
      int rc = ex.Close(ticket, 0.0, "verdict close", Now());
      sent_first_minute += Sends() - before;
      if(i < 3)
         rcs += (i ? "," : "") + IntegerToString(rc);
      FakeTick();
   }
   rcs += "]";
   bool other_free = !ex.BackingOff(other, Now());
   // the market opens again: the close goes through once the back-off has passed
   g_fk.script.clear();
   g_fk.market_open = true;
   g_fk.Sym("EURUSD").freeze_level = 0;
   int rc_later = EXEC_BACKOFF;
   for(int i = 0; i < 400 && rc_later == EXEC_BACKOFF; i++)
   {
      FakeTick();
      rc_later = ex.Close(ticket, 0.0, "verdict close", Now());
   }
   Result("{\"rcs\":" + rcs + ",\"sent_first_minute\":" + IntegerToString(sent_first_minute) + ",\"other_free\":" +
          B(other_free) + ",\"rc_later\":" + IntegerToString(rc_later) + ",\"positions\":" + ServerPositions() + "}");
}

// A stop set a moment ago (the "just modified" cache) and then removed on the server: Protect must
// not take the cached stop for the position's stop; it sets it again.
static void ModifyCacheStopRemoved()
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 0, 0);
   CExecutor ex;
   Init(ex);
   ulong ticket = SeedPosition(0.10, 1.09700);
   bool moved = ex.Modify(ticket, 1.09750, 0.0, "trail", Now());
   FakeTick();
   for(FakePosition &p : g_fk.srv_positions)
      p.sl = 0.0;   // removed by hand, 1 s later
   FakeSyncPositions();
   bool protect = ex.Protect(ticket, true, 1.09750, 0.0, Now());
   Result("{\"moved\":" + B(moved) + ",\"protect\":" + B(protect) + ",\"sltp_sends\":" + IntegerToString(SendsFor(TRADE_ACTION_SLTP)) +
          ",\"positions\":" + ServerPositions() + "}");
}

// 7. Trade permissions: nothing is sent and the entry is refused locally (EXEC_REFUSED).
static void Permission(const string &what, bool buy)
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 0, 0);
   if(what == "terminal")
      g_fk.terminal_trade_allowed = false;
   else if(what == "program")
      g_fk.mql_trade_allowed = false;
   else if(what == "account")
      g_fk.account_trade_allowed = false;
   else if(what == "expert")
      g_fk.account_trade_expert = false;
   else if(what == "disabled")
      g_fk.Sym("EURUSD").trade_mode = SYMBOL_TRADE_MODE_DISABLED;
   else if(what == "closeonly")
      g_fk.Sym("EURUSD").trade_mode = SYMBOL_TRADE_MODE_CLOSEONLY;
   else if(what == "longonly")
      g_fk.Sym("EURUSD").trade_mode = SYMBOL_TRADE_MODE_LONGONLY;
   CExecutor ex;
   Init(ex);
   double filled = 0.0;
   ulong position = 0;
   double bid = g_fk.Sym("EURUSD").bid;
   int rc = buy ? OpenBuy(ex, 0.10, "sig-1", filled, position)
                : ex.Open(false, 0.10, bid + 0.0030, bid - 0.0060, "sig-1", Now(), filled, position);
   Result("{\"rc\":" + IntegerToString(rc) + ",\"sends\":" + IntegerToString(Sends()) + ",\"block\":\"" + ex.TradeBlock(buy) +
          "\"}");
}

// The retcodes of an entry: what is retried, what is accepted, what is refused.
static void EntryRetcode(uint retcode)
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 0, 0);
   if(retcode == TRADE_RETCODE_DONE_PARTIAL)
      g_fk.Sym("EURUSD").filling = SYMBOL_FILLING_IOC;   // a partial fill is an IOC (or RETURN) fill
   CExecutor ex;
   Init(ex);
   g_fk.script.push_back(retcode);
   double filled = 0.0;
   ulong position = 0;
   int rc = OpenBuy(ex, 0.20, "sig-1", filled, position);
   Result("{\"retcode\":" + IntegerToString(retcode) + ",\"rc\":" + IntegerToString(rc) + ",\"sends\":" + IntegerToString(Sends()) +
          ",\"filled\":" + N(filled) + ",\"positions\":" + ServerPositions() + ",\"locked\":" + B(ex.EntryLocked()) + "}");
}

// Filling modes: what the executor asks for on each kind of symbol, and what the server says.
static void Filling(long flags, long exemode)
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 0, 0);
   g_fk.Sym("EURUSD").filling = flags;
   g_fk.Sym("EURUSD").exemode = exemode;
   CExecutor ex;
   Init(ex);
   double filled = 0.0;
   ulong position = 0;
   int rc = OpenBuy(ex, 0.10, "sig-1", filled, position);
   int close_rc = position != 0 ? ex.Close(position, 0.0, "test", Now()) : -1;
   int filling = g_fk.sends.empty() ? -1 : (int)g_fk.sends[0].request.type_filling;
   Result("{\"rc\":" + IntegerToString(rc) + ",\"filling\":" + IntegerToString(filling) + ",\"close_rc\":" + IntegerToString(close_rc) +
          ",\"positions\":" + ServerPositions() + "}");
}

// 5. HTTP base URLs ending in '/' (or only '/') are trimmed and the constructor returns.
static void HttpBase(const string &base)
{
   CHttpTransport t(base, 250, "");
   Result("{\"name\":\"" + t.Name() + "\"}");
}

// Netting: an entry reverses the symbol's position. The position keeps its identifier (the deal's
// DEAL_POSITION_ID) but takes the reversing order's ticket: the entry finds it by identifier at
// once rather than holding the in-flight lock until its timeout.
static void NettingReversalIdentifier()
{
   Setup(ACCOUNT_MARGIN_MODE_RETAIL_NETTING, 0, 0);
   CExecutor ex;
   Init(ex);
   ulong old_ticket = SeedPosition(0.10, g_fk.Sym("EURUSD").bid - 0.0030);
   double bid = g_fk.Sym("EURUSD").bid;
   double filled = 0.0;
   ulong position = 0;
   int rc = ex.Open(false, 0.30, bid + 0.0030, bid - 0.0060, "sig-r", Now(), filled, position);
   bool locked_at_open = ex.EntryLocked();
   ulong seen = 0;
   string states = "[";
   for(int i = 0; i < 4; i++)
   {
      FakeTick();
      ulong p = 0;
      int st = ex.EntryState(Now(), p);
      states += (i ? "," : "") + IntegerToString(st);
      if(st == EXEC_ENTRY_SEEN)
         seen = p;
   }
   states += "]";
   const FakePosition &q = g_fk.srv_positions[0];
   Result("{\"rc\":" + IntegerToString(rc) + ",\"old_ticket\":" + IntegerToString((long)old_ticket) + ",\"server_ticket\":" +
          IntegerToString((long)q.ticket) + ",\"identifier\":" + IntegerToString((long)q.identifier) + ",\"position_at_open\":" +
          IntegerToString((long)position) + ",\"locked_at_open\":" + B(locked_at_open) + ",\"states\":" + states +
          ",\"seen\":" + IntegerToString((long)seen) + ",\"locked\":" + B(ex.EntryLocked()) + ",\"positions\":" +
          ServerPositions() + "}");
}

int main(int argc, char **argv)
{
   if(argc < 2)
      return 2;
   string s = argv[1];
   if(s == "open_delayed_hedging")
      OpenDelayed(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 3, 0);
   else if(s == "open_delayed_hedging_no_deal")
      OpenDelayed(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, 3, 3);
   else if(s == "open_delayed_netting")
      OpenDelayed(ACCOUNT_MARGIN_MODE_RETAIL_NETTING, 3, 1);
   else if(s == "netting_reversal_identifier")
      NettingReversalIdentifier();
   else if(s == "second_entry_in_flight")
      SecondEntryInFlight();
   else if(s == "netting_reduce_after_stop")
      NettingReduce(true);
   else if(s == "netting_reduce")
      NettingReduce(false);
   else if(s == "hedging_partial_after_late_login")
      HedgingPartialAfterLateLogin();
   else if(s == "close_backoff_market_closed")
      CloseBackoff(0, true, 0);
   else if(s == "close_backoff_too_many_requests")
      CloseBackoff(TRADE_RETCODE_TOO_MANY_REQUESTS, false, 0);
   else if(s == "close_backoff_rejected")
      CloseBackoff(TRADE_RETCODE_REJECT, false, 0);
   else if(s == "close_backoff_timeout")
      CloseBackoff(TRADE_RETCODE_TIMEOUT, false, 0);
   else if(s == "close_backoff_connection")
      CloseBackoff(TRADE_RETCODE_CONNECTION, false, 0);
   else if(s == "modify_cache_stop_removed")
      ModifyCacheStopRemoved();
   else if(s == "close_frozen")
      CloseBackoff(0, false, 50);
   else if(s.rfind("permission_", 0) == 0)
   {
      string what = s.substr(11);
      bool buy = true;
      if(what.size() > 5 && what.substr(what.size() - 5) == "_sell")
      {
         buy = false;
         what = what.substr(0, what.size() - 5);
      }
      Permission(what, buy);
   }
   else if(s.rfind("entry_retcode_", 0) == 0)
      EntryRetcode((uint)std::atoi(s.substr(14).c_str()));
   else if(s == "filling_fok_market")
      Filling(SYMBOL_FILLING_FOK, SYMBOL_TRADE_EXECUTION_MARKET);
   else if(s == "filling_ioc_market")
      Filling(SYMBOL_FILLING_IOC, SYMBOL_TRADE_EXECUTION_MARKET);
   else if(s == "filling_return_instant")
      Filling(0, SYMBOL_TRADE_EXECUTION_INSTANT);
   else if(s == "filling_none_market")
      Filling(0, SYMBOL_TRADE_EXECUTION_MARKET);
   else if(s.rfind("http_base:", 0) == 0)
      HttpBase(s.substr(10));
   else
      return 2;
   return 0;
}
