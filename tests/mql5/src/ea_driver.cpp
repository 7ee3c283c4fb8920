// SidecarEA.mq5 itself (translated to C++; inputs at their defaults unless a scenario sets one
// before OnInit, as the operator would in the EA's properties) run against the terminal fake
// and a scripted sidecar behind the fake libzmq.
//   ea_driver <scenario>  -> lines "RESULT {json}" on stdout (the EA's log lines too).
#include "SidecarEA.cpp"

#include "fake_helpers.h"

// ---------------------------------------------------------------- the scripted sidecar

struct ScriptedVerdict
{
   string action = "hold";
   string side = "buy";
   double volume = 0.10;
   double sl = 0.0;
   double tp = 0.0;
   string signal = "";
   ulong close_ticket = 0;
   double close_volume = 0.0;
};
static ScriptedVerdict g_sv;
static int g_hello_latency = 1;
static int g_tick_latency = 1;
static int g_hellos = 0;
static int g_ticks = 0;
static bool g_forget = false;  // the next tick gets UNKNOWN_SYMBOL (a restarted sidecar)
static bool g_forget_always = false;  // every tick gets it (more charts than the sidecar holds)
static std::vector<long> g_hello_times;

static string Field(const string &json, const string &key)
{
   string k = "\"" + key + "\":\"";
   size_t p = json.find(k);
   if(p == std::string::npos)
      return "";
   p += k.size();
   size_t e = json.find('"', p);
   return json.substr(p, e - p);
}

static FakeReply Sidecar(const string &req)
{
   FakeReply r;
   string type = Field(req, "type");
   string id = Field(req, "id");
   if(type == "hello")
   {
      g_hellos++;
      g_hello_times.push_back(g_fk.now);
      r.latency_ms = g_hello_latency;
   }
   if(type == "tick" && (g_forget || g_forget_always))
   {
      g_forget = false;
      r.text = "{\"v\":1,\"type\":\"error\",\"id\":\"" + id + "\",\"ok\":false,\"error\":{\"code\":"
               "\"UNKNOWN_SYMBOL\",\"message\":\"symbol: not introduced by hello; send hello first\"}}";
      return r;
   }
   if(type == "tick")
   {
      g_ticks++;
      r.latency_ms = g_tick_latency;
      string open = "null";
      if(g_sv.action == "open")
         open = "{\"side\":\"" + g_sv.side + "\",\"volume\":" + N(g_sv.volume) + ",\"sl\":" + N(g_sv.sl) + ",\"tp\":" + N(g_sv.tp) +
                ",\"risk_pct\":0.3,\"signal_id\":\"" + g_sv.signal + "\"}";
      string close = "[]";
      if(g_sv.close_ticket != 0)
         close = "[{\"ticket\":" + IntegerToString((long)g_sv.close_ticket) + ",\"volume\":" + N(g_sv.close_volume) + "}]";
      r.text = "{\"v\":1,\"type\":\"verdict\",\"id\":\"" + id + "\",\"ok\":true,\"action\":\"" + g_sv.action +
               "\",\"mode\":\"active\",\"open\":" + open + ",\"close\":" + close +
               ",\"manage\":{\"breakeven_r\":1.0,\"partial_r\":1.0,\"partial_fraction\":0.5,\"trail_atr\":0.0,"
               "\"trail_distance\":0.0},\"leverage_cap\":100,\"valid_until\":" +
               IntegerToString(g_fk.now + 60) + ",\"reasons\":[]}";
      return r;
   }
   r.text = "{\"v\":1,\"type\":\"ack\",\"id\":\"" + id + "\",\"ok\":true}";
   return r;
}

// ---------------------------------------------------------------- driving the EA

static void Start(long margin_mode, bool tester)
{
   Setup(margin_mode, 0, 0);
   g_fk.tester = tester;
   g_fz = FakeZmq();
   g_fake_sidecar = Sidecar;
   g_sv = ScriptedVerdict();
}

static void Tick(int n = 1)
{
   for(int i = 0; i < n; i++)
   {
      FakeTick();
      OnTick();
      OnTimer();
   }
}

// The EA is up, has read the history and may enter (the deal history needs a settled read).
static void Ready()
{
   OnInit();
   Tick(DEAL_SYNC_SETTLE_SEC + 10);
}

static int DealSendsNaming(ulong ticket)
{
   int n = 0;
   for(const FakeSend &s : g_fk.sends)
      if(s.request.action == TRADE_ACTION_DEAL && s.request.position == ticket)
         n++;
   return n;
}

static int EntrySends()
{
   int n = 0;
   for(const FakeSend &s : g_fk.sends)
      if(s.request.action == TRADE_ACTION_DEAL && s.request.position == 0)
         n++;
   return n;
}

static string Checks(const string &part)
{
   string out = "[";
   bool first = true;
   for(const string &c : g_fk.file_checks)
      if(c.find(part) != std::string::npos)
      {
         out += (first ? "" : ",") + JsonQuote(c);
         first = false;
      }
   return out + "]";
}

// 2. Started before the terminal has logged in: nothing is loaded, sent or saved under login 0.
static void WaitsForLogin()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   g_fk.login = 0;
   g_fk.connected = false;
   OnInit();
   Tick(5);
   int hellos_before = g_hellos;
   string zero_checks = Checks("_0_");
   bool ready_before = g_ready;
   g_fk.login = 5550001;
   g_fk.connected = true;
   Tick(2);
   Result("{\"ready_before\":" + B(ready_before) + ",\"hellos_before\":" + IntegerToString(hellos_before) +
          ",\"zero_login_files\":" + zero_checks + ",\"ready\":" + B(g_ready) + ",\"hellos\":" + IntegerToString(g_hellos) +
          ",\"login_files\":" + Checks("_5550001_") + ",\"hedging\":" + B(g_exec.Hedging()) + "}");
   OnDeinit(0);
}

// 1. The partial close went out; the terminal shows the old volume for a few ticks.
static void NoDoublePartial(long margin_mode)
{
   Start(margin_mode, false);
   Ready();
   ulong ticket = SeedPosition(0.10, g_fk.Sym("EURUSD").bid - 0.0030);
   Tick(1);
   g_fk.pos_delay = 4;
   g_fk.deal_delay = 4;
   // beyond +1R (the stop is 31 pips from the entry at the ask)
   g_fk.Sym("EURUSD").bid += 0.0045;
   g_fk.Sym("EURUSD").ask += 0.0045;
   Tick(10);
   Result("{\"partial_sends\":" + IntegerToString(DealSendsNaming(ticket)) + ",\"positions\":" + ServerPositions() + "}");
   OnDeinit(0);
}

// 1. A new signal while the previous entry's position is not visible yet.
static void NoSecondEntry()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   Ready();
   g_fk.pos_delay = 3;
   g_fk.deal_delay = 3;
   double ask = g_fk.Sym("EURUSD").ask;
   g_sv.action = "open";
   g_sv.sl = ask - 0.0030;
   g_sv.tp = ask + 0.0060;
   for(int i = 0; i < 8; i++)
   {
      g_sv.signal = "s" + IntegerToString(i + 1);
      Tick(1);
   }
   Result("{\"entry_sends\":" + IntegerToString(EntrySends()) + ",\"positions\":" + ServerPositions() + "}");
   OnDeinit(0);
}

// 4. The sidecar asks for a close every tick while the market is closed.
static void CloseBackoff()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   Ready();
   ulong ticket = SeedPosition(0.10, g_fk.Sym("EURUSD").bid - 0.0030);
   Tick(1);
   g_fk.market_open = false;
   g_sv.action = "close";
   g_sv.close_ticket = ticket;
   g_sv.close_volume = 0.10;
   Tick(30);
   int closed_market = DealSendsNaming(ticket);
   g_fk.market_open = true;
   Tick(90);
   Result("{\"sends_while_closed\":" + IntegerToString(closed_market) + ",\"positions\":" + ServerPositions() + "}");
   OnDeinit(0);
}

// 1. A position of ours loses its stop (removed by hand, or a broker that dropped it): the EA puts
//    the initial stop back, or closes the position when that stop cannot be placed any more.
static void MissingStop(bool price_beyond_stop)
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   Ready();
   double sl = g_fk.Sym("EURUSD").bid - 0.0030;
   ulong ticket = SeedPosition(0.10, sl);
   Tick(1);
   for(FakePosition &p : g_fk.srv_positions)
      p.sl = 0.0;
   FakeSyncPositions();
   if(price_beyond_stop)
   {
      g_fk.Sym("EURUSD").bid = sl - 0.0005;
      g_fk.Sym("EURUSD").ask = sl - 0.0004;
   }
   Tick(3);
   Result("{\"ticket\":" + IntegerToString((long)ticket) + ",\"wanted_sl\":" + N(sl) + ",\"positions\":" + ServerPositions() + "}");
   OnDeinit(0);
}

// 7. Algo trading is off in the terminal: nothing is sent and the signal stays usable.
static void PermissionKeepsSignal()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   Ready();
   g_fk.terminal_trade_allowed = false;
   double ask = g_fk.Sym("EURUSD").ask;
   g_sv.action = "open";
   g_sv.signal = "s1";
   g_sv.sl = ask - 0.0030;
   g_sv.tp = ask + 0.0060;
   Tick(3);
   int sends_disabled = (int)g_fk.sends.size();
   g_fk.terminal_trade_allowed = true;
   Tick(2);
   string comment = g_fk.srv_positions.empty() ? "" : g_fk.srv_positions[0].comment;
   Result("{\"sends_disabled\":" + IntegerToString(sends_disabled) + ",\"positions\":" + ServerPositions() + ",\"comment\":\"" +
          comment + "\"}");
   OnDeinit(0);
}

// 6. A hello that takes 1 s, ticks that take 1 s live and 5 s in the Strategy Tester.
static void Timeouts(bool tester)
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, tester);
   g_hello_latency = 1000;
   g_tick_latency = tester ? 5000 : 1000;
   OnInit();
   bool hello_done = g_hello_done;
   Tick(1);
   bool verdict = g_have_verdict;
   string seen = "[";
   for(size_t i = 0; i < g_fz.timeouts_seen.size() && i < 3; i++)
      seen += (i ? "," : "") + IntegerToString(g_fz.timeouts_seen[i]);
   seen += "]";
   Result("{\"hello_done\":" + B(hello_done) + ",\"verdict\":" + B(verdict) + ",\"timeouts\":" + seen + "}");
   OnDeinit(0);
}

// A sidecar restarted between two ticks: it answers UNKNOWN_SYMBOL, and the EA introduces its
// chart again at once rather than InpHelloRetrySec later.
static void Restarted()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   OnInit();
   Tick(1);
   int hellos_before = g_hellos;
   g_forget = true;
   Tick(1);
   Result("{\"hellos_before\":" + IntegerToString(hellos_before) + ",\"hellos_after\":" + IntegerToString(g_hellos) +
          ",\"hello_done\":" + B(g_hello_done) + "}");
   OnDeinit(0);
}

// Another chart's hello evicts this one every time (more charts than the sidecar holds): every
// tick is answered UNKNOWN_SYMBOL. The immediate re-hello goes out at most once per
// InpHelloRetrySec; otherwise hellos keep the normal pacing.
static void UnknownSymbolStorm()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   OnInit();
   Tick(1);
   g_hello_times.clear();
   g_forget_always = true;
   Tick(30);
   string times = "[";
   for(size_t i = 0; i < g_hello_times.size(); i++)
      times += (i ? "," : "") + IntegerToString(g_hello_times[i]);
   times += "]";
   Result("{\"hello_times\":" + times + ",\"retry_sec\":" + IntegerToString(InpHelloRetrySec) + ",\"rehello_sec\":" +
          IntegerToString(HELLO_REHELLO_MIN_SEC) + ",\"ticks\":" +
          IntegerToString(g_ticks) + "}");
   OnDeinit(0);
}

// An entry the broker fills without its stop; the stop cannot be set and the first close is
// refused too. The position must not stay open without a stop: it is closed once the back-off
// has passed.
static void UnprotectedFill()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   Ready();
   g_fk.drop_sl_on_fill = true;
   g_fk.script.push_back(0);                          // the entry fills
   g_fk.script.push_back(TRADE_RETCODE_REJECT);       // the stop is refused
   g_fk.script.push_back(TRADE_RETCODE_REJECT);       // and so is the close
   double ask = g_fk.Sym("EURUSD").ask;
   g_sv.action = "open";
   g_sv.signal = "s1";
   g_sv.sl = ask - 0.0030;
   g_sv.tp = ask + 0.0060;
   Tick(1);
   string after_fill = ServerPositions();
   g_sv.action = "hold";
   Tick(5);
   string within_backoff = ServerPositions();
   Tick(40);
   Result("{\"after_fill\":" + after_fill + ",\"within_backoff\":" + within_backoff + ",\"positions\":" + ServerPositions() +
          ",\"entry_sends\":" + IntegerToString(EntrySends()) + "}");
   OnDeinit(0);
}

static const string FLOOR_GV = "SC.floor.5550001.20251218";   // SC.floor.<login>.<magic>

// The equity floor hit by another chart of this login and magic (it sets the terminal global
// variable): this chart closes its own symbol's positions -- from its timer, without a tick --
// and refuses entries.
static void FloorOtherChart()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   InpEquityFloorPct = 90.0;
   Ready();
   SeedPosition(0.10, g_fk.Sym("EURUSD").bid - 0.0030);
   Tick(1);
   string before = ServerPositions();
   string lock_before = g_lock;
   long hit = g_fk.now - 3;
   GlobalVariableSet(FLOOR_GV, (double)hit);   // as the other chart's EA does
   FakeTick();
   OnTimer();                                  // no tick on this chart's symbol
   string after_timer = ServerPositions();
   double ask = g_fk.Sym("EURUSD").ask;
   g_sv.action = "open";
   g_sv.signal = "s1";
   g_sv.sl = ask - 0.0030;
   g_sv.tp = ask + 0.0060;
   Tick(5);
   Result("{\"before\":" + before + ",\"lock_before\":\"" + lock_before + "\",\"after_timer\":" + after_timer +
          ",\"positions\":" + ServerPositions() + ",\"entry_sends\":" + IntegerToString(EntrySends()) + ",\"lock\":\"" +
          g_lock + "\",\"floor_time\":" + IntegerToString(g_state.floor_time) + ",\"hit\":" + IntegerToString(hit) + "}");
   OnDeinit(0);
   InpEquityFloorPct = 0.0;
}

// This chart hits the floor: it tells the account's other charts (the global variable); the input
// set to 0 clears it (the variable too), and setting it again arms the floor afresh.
static void FloorThisChart()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   InpEquityFloorPct = 90.0;
   Ready();
   bool gv_before = GlobalVariableCheck(FLOOR_GV);
   g_fk.balance = 8900.0;   // equity at 89% of the high-water mark
   Tick(1);
   bool published = GlobalVariableCheck(FLOOR_GV);
   long gv_time = (long)GlobalVariableGet(FLOOR_GV);
   long floor_time = g_state.floor_time;
   string lock_hit = g_lock;
   // the operator clears it: the input set to 0 (the EA restarts with its new inputs)
   OnDeinit(0);
   InpEquityFloorPct = 0.0;
   OnInit();
   Tick(2);
   bool gv_after_clear = GlobalVariableCheck(FLOOR_GV);
   string lock_clear = g_lock;
   // equity back up, the floor armed again: not hit
   g_fk.balance = 10000.0;
   OnDeinit(0);
   InpEquityFloorPct = 90.0;
   OnInit();
   Tick(2);
   Result("{\"gv_before\":" + B(gv_before) + ",\"published\":" + B(published) + ",\"gv_time\":" + IntegerToString(gv_time) +
          ",\"floor_time\":" + IntegerToString(floor_time) + ",\"lock_hit\":\"" + lock_hit + "\",\"gv_after_clear\":" +
          B(gv_after_clear) + ",\"lock_clear\":\"" + lock_clear + "\",\"gv_rearmed\":" + B(GlobalVariableCheck(FLOOR_GV)) +
          ",\"lock_rearmed\":\"" + g_lock + "\",\"floor_time_rearmed\":" + IntegerToString(g_state.floor_time) + "}");
   OnDeinit(0);
   InpEquityFloorPct = 0.0;
}

static string FileNames(const string &part)
{
   string out = "[";
   bool first = true;
   for(const auto &f : g_fk.files)
      if(f.first.find(part) != std::string::npos)
      {
         out += (first ? "" : ",") + JsonQuote(f.first);
         first = false;
      }
   return out + "]";
}

// Netting: a manual position (magic 0) is open on the symbol. An entry would merge into it (its
// stop and target replaced by the order's) or reverse it: refused with NETTING_POSITION_OPEN,
// and the signal stays usable once the symbol is flat.
static void NettingForeignPosition()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_NETTING, false);
   Ready();
   double manual_sl = g_fk.Sym("EURUSD").bid - 0.0050;
   ulong manual = SeedPosition(0.10, manual_sl);
   for(FakePosition &p : g_fk.srv_positions)
      p.magic = 0;
   FakeSyncPositions();
   Tick(1);
   double ask = g_fk.Sym("EURUSD").ask;
   g_sv.action = "open";
   g_sv.signal = "s1";
   g_sv.side = "sell";   // would reverse the manual buy
   g_sv.sl = ask + 0.0030;
   g_sv.tp = ask - 0.0060;
   Tick(3);
   int sends_with_manual = EntrySends();
   string with_manual = ServerPositions();
   string refusal = g_last_refusal;
   // the operator closes the manual position: the same signal opens now
   FakeRemoveServerPosition(manual);
   FakeSyncPositions();
   Tick(2);
   string comment = g_fk.srv_positions.empty() ? "" : g_fk.srv_positions[0].comment;
   Result("{\"sends_with_manual\":" + IntegerToString(sends_with_manual) + ",\"with_manual\":" + with_manual +
          ",\"manual_sl\":" + N(manual_sl) + ",\"refusal\":\"" + refusal + "\",\"entry_sends\":" +
          IntegerToString(EntrySends()) + ",\"comment\":\"" + comment + "\"}");
   OnDeinit(0);
}

// The account is switched: by OnDeinit(REASON_ACCOUNT) the terminal already reports the new
// login. The state, queue and deal cursor are saved under the login they were loaded for, and the
// re-init loads the new login's.
static void AccountSwitch()
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   Ready();
   g_fk.files.clear();
   g_fk.login = 5550002;
   OnDeinit(6);   // REASON_ACCOUNT
   string saved_old = FileNames("_5550001_");
   string saved_new = FileNames("_5550002_");
   g_fk.file_checks.clear();
   OnInit();
   Tick(1);
   Result("{\"saved_old\":" + saved_old + ",\"saved_new\":" + saved_new + ",\"loaded_new\":" + Checks("_5550002_") +
          ",\"loaded_old\":" + Checks("_5550001_") + ",\"login\":" + IntegerToString(g_login) + "}");
   OnDeinit(0);
}

// Started mid-day: the day anchor is rebuilt from a history the terminal has not finished
// downloading (a deal closed earlier today shows up 60 s later). Once the connection has settled
// (DEAL_SYNC_SETTLE_SEC) the rebuild is made once more, and may only raise the anchor.
static void AnchorRecheck(double profit)
{
   Start(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING, false);
   FakeDeal d;
   d.ticket = 40000;
   d.order = 39999;
   d.position_id = 39999;
   d.symbol = "EURUSD";
   d.type = DEAL_TYPE_SELL;
   d.entry = DEAL_ENTRY_OUT;
   d.reason = DEAL_REASON_CLIENT;
   d.volume = 0.10;
   d.price = 1.1;
   d.profit = profit;   // already in the balance
   d.magic = 0;
   d.time = g_fk.now - 600;
   d.visible_at = 60;
   g_fk.deals.push_back(d);
   OnInit();
   double at_start = g_state.day_start_equity;
   Tick(50);
   double before_settle = g_state.day_start_equity;
   Tick(DEAL_SYNC_SETTLE_SEC + 10);
   Result("{\"at_start\":" + N(at_start) + ",\"before_settle\":" + N(before_settle) + ",\"after\":" +
          N(g_state.day_start_equity) + ",\"balance\":" + N(g_fk.balance) + ",\"profit\":" + N(profit) + "}");
   OnDeinit(0);
}

int main(int argc, char **argv)
{
   if(argc < 2)
      return 2;
   string s = argv[1];
   if(s == "waits_for_login")
      WaitsForLogin();
   else if(s == "no_double_partial")
      NoDoublePartial(ACCOUNT_MARGIN_MODE_RETAIL_HEDGING);
   else if(s == "no_double_partial_netting")
      NoDoublePartial(ACCOUNT_MARGIN_MODE_RETAIL_NETTING);
   else if(s == "no_second_entry")
      NoSecondEntry();
   else if(s == "close_backoff")
      CloseBackoff();
   else if(s == "permission_keeps_signal")
      PermissionKeepsSignal();
   else if(s == "missing_stop_restored")
      MissingStop(false);
   else if(s == "missing_stop_closed")
      MissingStop(true);
   else if(s == "restarted_sidecar")
      Restarted();
   else if(s == "unknown_symbol_storm")
      UnknownSymbolStorm();
   else if(s == "unprotected_fill")
      UnprotectedFill();
   else if(s == "floor_other_chart")
      FloorOtherChart();
   else if(s == "floor_this_chart")
      FloorThisChart();
   else if(s == "netting_foreign_position")
      NettingForeignPosition();
   else if(s == "account_switch")
      AccountSwitch();
   else if(s == "anchor_recheck_loss")
      AnchorRecheck(-300.0);
   else if(s == "anchor_recheck_win")
      AnchorRecheck(300.0);
   else if(s == "timeouts_live")
      Timeouts(false);
   else if(s == "timeouts_tester")
      Timeouts(true);
   else
      return 2;
   return 0;
}
