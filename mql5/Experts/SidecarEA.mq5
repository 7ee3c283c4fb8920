//+------------------------------------------------------------------+
//| SidecarEA.mq5 -- thin Expert Advisor for the MT5 Sidecar.          |
//| Glue only: asks the local sidecar for a verdict on every tick,     |
//| enforces the Guard's hard limits whatever the verdict says,        |
//| manages open positions locally (partial, breakeven, trailing),     |
//| forwards deals, calendar and heartbeats. Fail closed: no answer    |
//| or a late one -> no new entries; management and limits continue.   |
//| Operator guide: docs/mt5.md                                        |
//+------------------------------------------------------------------+
#property copyright "MT5 Sidecar"
#property version   "1.00"
#property description "Thin EA: verdicts from the local sidecar, hard limits and trade management in the terminal."
#property tester_library "libzmq.dll"

#include <Sidecar\Log.mqh>
#include <Sidecar\Sizing.mqh>
#include <Sidecar\Guard.mqh>
#include <Sidecar\Manager.mqh>
#include <Sidecar\Protocol.mqh>
#include <Sidecar\Transport.mqh>
#include <Sidecar\Executor.mqh>
#include <Sidecar\DealSync.mqh>

#define EA_NAME    "SidecarEA"
#define EA_VERSION "1.0.0"
#define EA_MAX_HELLO_BARS 500
#define EA_MAX_TICK_BARS  100
#define EA_MAX_EVENTS     200   // keeps a calendar push well under the sidecar's 64 KiB limit
#define EA_QUEUE_MAX      5000
#define EA_AMBIGUOUS_PAUSE_SEC 60   // no new entry on the symbol this long after an ambiguous send
#define EA_REJECT_PAUSE_SEC    10   // nor this long after the server refused an entry

enum ENUM_SC_TRANSPORT
  {
   SC_TRANSPORT_ZMQ = 0,   // ZeroMQ REQ (live and Strategy Tester)
   SC_TRANSPORT_HTTP = 1   // HTTP WebRequest (live only)
  };

//--- connection
input group "Sidecar connection"
input ENUM_SC_TRANSPORT InpTransport      = SC_TRANSPORT_ZMQ;          // Transport
input string            InpZmqEndpoint    = "tcp://127.0.0.1:5555";    // ZeroMQ endpoint
input string            InpHttpBase       = "http://127.0.0.1:8765";   // HTTP base URL (whitelist it)
input string            InpToken          = "";                        // Token (empty = none)
input int               InpTimeoutMs      = 250;                       // Tick/trade/heartbeat timeout, ms
input int               InpHelloTimeoutMs = 3000;                      // Hello timeout (warm-up bars), ms
input int               InpCalendarTimeoutMs = 2000;                   // Calendar push timeout, ms
input int               InpTesterTimeoutMs = 30000;                    // Strategy Tester: lock-step wait bound, ms
input int               InpHeartbeatSec   = 30;                        // Heartbeat period, s (0 = off)
input int               InpCalendarMin    = 30;                        // Calendar push period, min (0 = off)
input int               InpHelloRetrySec  = 5;                         // Hello retry period, s
input int               InpBackoffMs      = 1000;                      // Pause after a failed request, ms
input int               InpDealSyncMin    = 10;                        // Re-read the deal history every N min (0 = off)
input int               InpDealSyncDays   = 7;                         // Deal history read on the first start, days
//--- identity and data
input group "Identity"
input ulong             InpMagic          = 20251218;                  // Magic number
input ENUM_TIMEFRAMES   InpTimeframe      = PERIOD_H1;                 // Bars timeframe sent to the sidecar
input int               InpWarmupBars     = 300;                       // Warm-up bars in hello (max 500)
//--- hard limits (Guard)
input group "Hard limits"
input double            InpMaxRiskPct     = 2.0;                       // Max risk per trade, % of equity
input double            InpMaxLeverage    = 500.0;                     // Max effective leverage (notional/equity)
input double            InpDailyLossPct   = 3.0;                       // Daily loss limit, % of day-start equity
input double            InpDayOffsetHours = 0.0;                       // Broker day starts at server midnight + hours (= sidecar broker.day_offset_hours)
input double            InpFloatingLossPct = 10.0;                     // Floating loss limit, % of balance
input double            InpMaxDrawdownPct = 15.0;                      // Drawdown from equity high, %
input int               InpMaxPositions   = 3;                         // Max open positions of this EA
input double            InpMaxLot         = 0.0;                       // Max lots per trade (0 = symbol max)
input double            InpMaxSpreadPts   = 0.0;                       // Max spread, points (0 = off)
input int               InpDupWindowSec   = 300;                       // Duplicate signal window, s
input double            InpEquityFloorPct = 0.0;                       // Equity floor, % of the equity high-water mark: close all, stop (0 = off)
//--- execution
input group "Execution"
input int               InpDeviationPts   = 10;                        // Max slippage, points
input int               InpRetries        = 3;                         // Retries (requote/price changed/off)
input int               InpEntryInFlightSec = 30;                      // Entry in flight: wait this long for its position
//--- local management defaults (used until a verdict brings its own)
input group "Trade management defaults"
input double            InpBreakevenR     = 1.0;                       // Breakeven at R (0 = off)
input double            InpPartialR       = 1.0;                       // Partial close at R (0 = off)
input double            InpPartialFraction = 0.5;                      // Partial close fraction
input double            InpTrailAtr       = 2.0;                       // Trailing distance, ATRs (0 = use points)
input int               InpTrailPoints    = 0;                         // Trailing distance, points (0 = off)
input int               InpBreakevenBufferPts = 0;                     // Breakeven buffer beyond entry, points
input int               InpAtrPeriod      = 14;                        // ATR period (on the bars timeframe)

//--- state
CTransport      *g_tr = NULL;
CExecutor        g_exec;
CJsonFlat        g_json;
CJsonWriter      g_w;
GuardLimits      g_limits;
GuardState       g_state;
ManageParams     g_defaults;
ProtoReply       g_reply;
ProtoReply       g_verdict;                 // last valid, in-time verdict
bool             g_have_verdict = false;
long             g_verdict_gmt = 0;         // when it arrived (GMT)
bool             g_sidecar_ok = false;
long             g_last_reply_gmt = 0;
ulong            g_retry_at = 0;            // GetTickCount64() before which requests are skipped
bool             g_hello_done = false;
long             g_last_hello_try = 0;     // NowMono(), as every interval below
#define HELLO_REHELLO_MIN_SEC 2    // immediate re-hellos after UNKNOWN_SYMBOL: at most one per 2 s
long             g_last_rehello = -1;       // last immediate re-hello after UNKNOWN_SYMBOL (-1 = none yet)
long             g_seq = 0;
long             g_last_heartbeat = 0;
long             g_last_calendar = 0;
datetime         g_last_bar_sent = 0;
int              g_atr = INVALID_HANDLE;
bool             g_tester = false;          // MQL_TESTER: ea.tester in hello, "tester":true in tick/trade/heartbeat
bool             g_state_dirty = false;     // high-water mark moved since the last save
long             g_state_saved = 0;
string           g_queue[];                 // trade messages waiting for their ack
string           g_queue_ids[];
string           g_lock = "";               // current account lock code
string           g_last_refusal = "";
long             g_entry_pause_until = 0;   // NowMono(); set after an ambiguous entry
bool             g_ready = false;           // account known (login, connected): state loaded, executor set up
long             g_anchor_recheck_day = 0;  // a day anchored from an unsettled history: rebuilt once more when settled (0 = none)
long             g_login = 0;               // the login EnsureReady loaded the state of: the files' and globals' key
LogThrottle      g_th_sidecar;
LogThrottle      g_th_risk;
LogThrottle      g_th_manage;
DealSyncCursor   g_dsync;                   // history watermark and the tickets queued recently
DealSyncBatch    g_dbatch;                  // one history read's candidates
bool             g_dsync_dirty = false;     // watermark moved since the last save
DealSyncClock    g_dclock;                  // connection and reads: when to read, whether to enter
bool             g_queue_saved = true;      // the last SaveQueue succeeded (the watermark waits otherwise)

//+------------------------------------------------------------------+
//| helpers                                                          |
//+------------------------------------------------------------------+
string TimeframeName(const ENUM_TIMEFRAMES tf)
  {
   string s = EnumToString(tf == PERIOD_CURRENT ? (ENUM_TIMEFRAMES)Period() : tf);
   return StringSubstr(s, 7);   // PERIOD_H1 -> H1
  }

ENUM_TIMEFRAMES BarsTf(void) { return InpTimeframe == PERIOD_CURRENT ? (ENUM_TIMEFRAMES)Period() : InpTimeframe; }

// server time - GMT, rounded to 15 minutes. In the tester TimeGMT() equals server time and the
// offset cannot be observed: the EA sends gmt == server and the sidecar applies its configured
// [broker] tester_gmt_offset_hours (valid_until stays consistent: it is derived from the gmt sent).
long GmtOffset(void)
  {
   if(g_tester)
      return 0;
   long raw = (long)(TimeTradeServer() - TimeGMT());
   return (long)MathRound((double)raw / 900.0) * 900;
  }

long NowServer(void) { return (long)(g_tester ? TimeCurrent() : TimeTradeServer()); }
// Seconds on a clock that never jumps, for intervals and pauses only (never sent, never saved):
// the broker's server time jumps back an hour when its daylight saving time ends, which would
// stall heartbeats, hello retries, state saves, log throttles and history reads for that hour.
// The Strategy Tester's time is simulated (GetTickCount64 runs in real time there), so
// intervals follow the tester's clock.
long NowMono(void) { return g_tester ? (long)TimeCurrent() : (long)(GetTickCount64() / 1000); }
long NowGmt(void) { return NowServer() - GmtOffset(); }

string NextId(const string prefix)
  {
   g_seq++;
   return prefix + "-" + IntegerToString(g_seq);
  }

string BodyToken(void) { return (g_tr != NULL && g_tr.TokenInBody()) ? InpToken : ""; }

// Keyed by the login the state was loaded for (g_login), never the login read at call time: in
// OnDeinit(REASON_ACCOUNT) ACCOUNT_LOGIN may already be the next account's.
string StateKey(void)
  {
   return IntegerToString(g_login) + "_" + IntegerToString((long)InpMagic) + "_" + _Symbol;
  }

string StateFile(void) { return "Sidecar\\guard_" + StateKey() + ".txt"; }
string QueueFile(void) { return "Sidecar\\queue_" + StateKey() + ".jsonl"; }
string DealCursorFile(void) { return "Sidecar\\deals_" + StateKey() + ".txt"; }
string GvName(const ulong ticket, const string what) { return "SC." + IntegerToString((long)InpMagic) + "." + IntegerToString((long)ticket) + "." + what; }

// Repeated events (same category and code) are printed at most once a minute per channel.
void Log(const string category, const string code, const string detail, LogThrottle &th)
  {
   if(LogThrottleAllow(th, category + " " + code, NowMono(), 60))
      Print(LogLine(category, code, detail));
  }

//+------------------------------------------------------------------+
//| persistence (the only file I/O; the Guard logic stays pure)       |
//+------------------------------------------------------------------+
// Writes through a temporary file renamed over the old one: a crash mid-write leaves the previous
// version, never a truncated file (the queue file must not lose deals the cursor counts as sent).
bool WriteText(const string name, const string text)
  {
   string tmp = name + ".tmp";
   int h = FileOpen(tmp, FILE_WRITE | FILE_TXT | FILE_ANSI, '\t', CP_UTF8);
   if(h == INVALID_HANDLE)
     {
      LogWrite(LOG_ACCOUNT, "FILE_WRITE_FAILED", LogKv("file", tmp) + " " + LogKv("error", IntegerToString(GetLastError())));
      return false;
     }
   bool ok = StringLen(text) == 0 || FileWriteString(h, text) > 0;
   FileClose(h);
   if(ok)
      ok = FileMove(tmp, 0, name, FILE_REWRITE);
   if(!ok)
      LogWrite(LOG_ACCOUNT, "FILE_WRITE_FAILED", LogKv("file", name) + " " + LogKv("error", IntegerToString(GetLastError())));
   return ok;
  }

bool ReadText(const string name, string &text)
  {
   text = "";
   string path = name;
   if(!FileIsExist(path))
      path = name + ".tmp";   // a crash between writing the new version and renaming it
   if(!FileIsExist(path))
      return false;
   int h = FileOpen(path, FILE_READ | FILE_TXT | FILE_ANSI, '\t', CP_UTF8);
   if(h == INVALID_HANDLE)
      return false;
   while(!FileIsEnding(h))
      text += FileReadString(h) + "\n";
   FileClose(h);
   return true;
  }

void SaveState(void)
  {
   g_state_dirty = false;
   g_state_saved = NowMono();
   if(g_tester)
      return;   // a backtest starts from clean anchors
   WriteText(StateFile(), GuardStateSerialize(g_state));
  }

void LoadState(void)
  {
   GuardStateReset(g_state);
   if(g_tester)
      return;
   string text;
   if(ReadText(StateFile(), text))
     {
      if(GuardStateParse(text, g_state))
         LogWrite(LOG_ACCOUNT, "ANCHORS_LOADED", LogKv("day_start_equity", DoubleToString(g_state.day_start_equity, 2)) + " " +
                  LogKv("hwm", DoubleToString(g_state.hwm, 2)) + " " + LogKv("signals", IntegerToString(g_state.sig_count)));
      else
         LogWrite(LOG_ACCOUNT, "ANCHORS_UNREADABLE", LogKv("file", StateFile()));
     }
  }

bool SaveQueue(void)
  {
   if(g_tester)
      return true;
   string text = "";
   for(int i = 0; i < ArraySize(g_queue); i++)
      text += g_queue_ids[i] + "\t" + g_queue[i] + "\n";
   g_queue_saved = WriteText(QueueFile(), text);
   return g_queue_saved;
  }

void LoadQueue(void)
  {
   ArrayResize(g_queue, 0);
   ArrayResize(g_queue_ids, 0);
   if(g_tester)
      return;
   string text;
   if(!ReadText(QueueFile(), text))
      return;
   string lines[];
   int n = StringSplit(text, '\n', lines);
   for(int i = 0; i < n; i++)
     {
      int tab = StringFind(lines[i], "\t");
      if(tab <= 0)
         continue;
      int k = ArraySize(g_queue);
      ArrayResize(g_queue, k + 1);
      ArrayResize(g_queue_ids, k + 1);
      g_queue_ids[k] = ScSubstr(lines[i], 0, tab);
      g_queue[k] = StringSubstr(lines[i], tab + 1);
     }
   if(ArraySize(g_queue) > 0)
      LogWrite(LOG_SIDECAR, "QUEUE_LOADED", LogKv("messages", IntegerToString(ArraySize(g_queue))));
  }

// The watermark only moves after the queue holding its deals was saved (SyncDeals), so a crash
// makes the next read queue deals again, never skip them.
void SaveDealCursor(void)
  {
   g_dsync_dirty = false;
   if(g_tester)
      return;
   WriteText(DealCursorFile(), DealSyncSerialize(g_dsync));
  }

void LoadDealCursor(void)
  {
   DealSyncReset(g_dsync);
   DealSyncClockReset(g_dclock);
   g_dsync_dirty = false;
   if(g_tester)
      return;
   string text;
   if(ReadText(DealCursorFile(), text) && !DealSyncParse(text, g_dsync))
      LogWrite(LOG_TRADE, "DEAL_CURSOR_UNREADABLE", LogKv("file", DealCursorFile()) + " " +
               LogKv("reread_days", IntegerToString(InpDealSyncDays)));
  }

//+------------------------------------------------------------------+
//| account snapshots                                                |
//+------------------------------------------------------------------+
void FillAccount(ProtoAccount &a)
  {
   a.login = AccountInfoInteger(ACCOUNT_LOGIN);
   a.server = AccountInfoString(ACCOUNT_SERVER);
   a.currency = AccountInfoString(ACCOUNT_CURRENCY);
   a.leverage = AccountInfoInteger(ACCOUNT_LEVERAGE);
   a.balance = AccountInfoDouble(ACCOUNT_BALANCE);
   a.equity = AccountInfoDouble(ACCOUNT_EQUITY);
   a.margin = AccountInfoDouble(ACCOUNT_MARGIN);
   a.free_margin = AccountInfoDouble(ACCOUNT_MARGIN_FREE);
  }

bool IsOurs(void)
  {
   return (ulong)PositionGetInteger(POSITION_MAGIC) == InpMagic;
  }

// All positions of the account: floating P/L and notional; ours: counts. An order of ours still in
// flight counts as a position (its fill is on the way). On a netting account any position on the
// symbol counts for the one-per-symbol rule: a new deal would merge into it or reverse it.
void FillGuardAccount(GuardAccount &g)
  {
   bool netting = AccountInfoInteger(ACCOUNT_MARGIN_MODE) != ACCOUNT_MARGIN_MODE_RETAIL_HEDGING;
   g.balance = AccountInfoDouble(ACCOUNT_BALANCE);
   g.equity = AccountInfoDouble(ACCOUNT_EQUITY);
   g.floating_pl = 0.0;
   g.positions = 0;
   g.symbol_positions = 0;
   g.open_notional = 0.0;
   g.open_risk = 0.0;
   g.no_stop = 0;
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      if(PositionGetTicket(i) == 0)
         continue;
      string sym = PositionGetString(POSITION_SYMBOL);
      g.floating_pl += PositionGetDouble(POSITION_PROFIT) + PositionGetDouble(POSITION_SWAP);
      double ts = SymbolInfoDouble(sym, SYMBOL_TRADE_TICK_SIZE);
      double tv = SymbolInfoDouble(sym, SYMBOL_TRADE_TICK_VALUE);
      g.open_notional += PositionGetDouble(POSITION_VOLUME) * GuardNotionalPerLot(PositionGetDouble(POSITION_PRICE_CURRENT), ts, tv);
      // what it loses further if its stop is hit (every position: they all move the equity)
      double tvl = SymbolInfoDouble(sym, SYMBOL_TRADE_TICK_VALUE_LOSS);
      double risk = GuardPositionRisk(PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY, PositionGetDouble(POSITION_VOLUME),
                                      PositionGetDouble(POSITION_PRICE_CURRENT), PositionGetDouble(POSITION_SL), ts, tvl > 0.0 ? tvl : tv);
      if(risk < 0.0)
         g.no_stop++;
      else
         g.open_risk += risk;
      if(IsOurs())
        {
         g.positions++;
         if(sym == _Symbol)
            g.symbol_positions++;
        }
      else
         if(netting && sym == _Symbol)
            g.symbol_positions++;
     }
   for(int i = OrdersTotal() - 1; i >= 0; i--)
     {
      if(OrderGetTicket(i) == 0 || (ulong)OrderGetInteger(ORDER_MAGIC) != InpMagic)
         continue;
      g.positions++;
      if(OrderGetString(ORDER_SYMBOL) == _Symbol)
         g.symbol_positions++;
     }
   // an entry filled on the server whose position the terminal does not show yet
   if(g_exec.EntryLocked())
     {
      g.positions++;
      g.symbol_positions++;
     }
  }

//+------------------------------------------------------------------+
//| request/reply                                                    |
//+------------------------------------------------------------------+
// The Strategy Tester waits for every reply (lock-step, bounded by InpTesterTimeoutMs) so that a
// backtest does not depend on the machine's load; live, a hello (warm-up bars) and a calendar push
// get their own, longer timeouts than the per-tick requests.
int RequestTimeoutMs(const string type)
  {
   if(g_tester)
      return InpTesterTimeoutMs;
   if(type == "hello")
      return InpHelloTimeoutMs;
   if(type == "calendar")
      return InpCalendarTimeoutMs;
   return InpTimeoutMs;
  }

#define CALL_OK       0
#define CALL_NO_REPLY 1
#define CALL_BAD      2

// Sends json and parses the reply into g_reply. A reply whose id differs from the request's is
// dropped (stale); an error with a null id is accepted as the answer.
int Call(const string type, const string id, const string json)
  {
   ProtoReplyReset(g_reply);
   if(g_tr == NULL)
      return CALL_NO_REPLY;
   // after a failure, pause requests briefly: a down sidecar must not block every tick
   if(GetTickCount64() < g_retry_at)
     {
      g_sidecar_ok = false;
      return CALL_NO_REPLY;
     }
   string text = "";
   int rc = g_tr.Request(type, json, text, RequestTimeoutMs(type));
   if(rc != TR_OK)
     {
      g_retry_at = GetTickCount64() + (ulong)InpBackoffMs;
      g_sidecar_ok = false;
      Log(LOG_SIDECAR, TransportResultName(rc), LogKv("type", type) + " " + LogKv("detail", g_tr.LastError()), g_th_sidecar);
      return CALL_NO_REPLY;
     }
   g_last_reply_gmt = NowGmt();
   if(!ProtoParseReplyWith(g_json, text, g_reply))
     {
      g_sidecar_ok = false;
      Log(LOG_SIDECAR, "BAD_REPLY", LogKv("type", type) + " " + LogKv("problem", g_reply.problem), g_th_sidecar);
      return CALL_BAD;
     }
   if(g_reply.id != id && !(g_reply.kind == PROTO_REPLY_ERROR && g_reply.id == ""))
     {
      g_sidecar_ok = false;
      Log(LOG_SIDECAR, "ID_MISMATCH", LogKv("sent", id) + " " + LogKv("got", g_reply.id), g_th_sidecar);
      return CALL_BAD;
     }
   g_sidecar_ok = true;
   if(g_reply.kind == PROTO_REPLY_ERROR)
     {
      Log(LOG_SIDECAR, "ERROR_REPLY", LogKv("type", type) + " " + LogKv("code", g_reply.error_code) + " " +
          LogKv("message", g_reply.error_message), g_th_sidecar);
      if(g_reply.error_code == "UNKNOWN_SYMBOL")
        {
         // The sidecar restarted (it answers, it just does not know this chart): introduce
         // ourselves again at once, not after InpHelloRetrySec, which paces retries to a
         // sidecar that does not answer. At most once per HELLO_REHELLO_MIN_SEC: with more
         // charts connected than the sidecar holds, each hello evicts another chart, and the
         // charts would otherwise all say hello on every tick. Otherwise the normal pacing.
         g_hello_done = false;
         long now = NowMono();
         if(g_last_rehello < 0 || now - g_last_rehello >= HELLO_REHELLO_MIN_SEC)
           {
            g_last_rehello = now;
            g_last_hello_try = 0;
           }
        }
     }
   return CALL_OK;
  }

void FillBar(const MqlRates &r, ProtoBar &b)
  {
   b.time = (long)r.time;
   b.open = r.open;
   b.high = r.high;
   b.low = r.low;
   b.close = r.close;
   b.tick_volume = (long)r.tick_volume;
   b.spread = r.spread;
  }

bool SendHello(void)
  {
   g_last_hello_try = NowMono();
   ProtoEa ea;
   ea.name = EA_NAME;
   ea.version = EA_VERSION;
   ea.magic = (long)InpMagic;
   ea.tester = g_tester;
   ea.day_offset_hours = InpDayOffsetHours;
   ea.has_limits = true;                            // the sidecar flags any looser than its own
   ea.limits.max_risk_pct = InpMaxRiskPct;
   ea.limits.max_leverage = InpMaxLeverage;
   ea.limits.daily_loss_pct = InpDailyLossPct;
   ea.limits.floating_loss_pct = InpFloatingLossPct;
   ea.limits.max_drawdown_pct = InpMaxDrawdownPct;
   ea.limits.max_positions = InpMaxPositions;
   ea.limits.equity_floor_pct = InpEquityFloorPct;
   ProtoAccount acc;
   FillAccount(acc);
   ProtoSymbol sym;
   sym.name = _Symbol;
   sym.base = SymbolInfoString(_Symbol, SYMBOL_CURRENCY_BASE);
   sym.quote = SymbolInfoString(_Symbol, SYMBOL_CURRENCY_PROFIT);
   sym.digits = (int)SymbolInfoInteger(_Symbol, SYMBOL_DIGITS);
   sym.point = SymbolInfoDouble(_Symbol, SYMBOL_POINT);
   sym.tick_size = SymbolInfoDouble(_Symbol, SYMBOL_TRADE_TICK_SIZE);
   sym.tick_value = SymbolInfoDouble(_Symbol, SYMBOL_TRADE_TICK_VALUE);
   sym.contract_size = SymbolInfoDouble(_Symbol, SYMBOL_TRADE_CONTRACT_SIZE);
   sym.volume_min = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_MIN);
   sym.volume_step = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_STEP);
   sym.volume_max = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_MAX);
   sym.stops_level = (int)SymbolInfoInteger(_Symbol, SYMBOL_TRADE_STOPS_LEVEL);
   sym.freeze_level = (int)SymbolInfoInteger(_Symbol, SYMBOL_TRADE_FREEZE_LEVEL);
   string id = NextId("h");
   long server = NowServer();
   ProtoHelloBegin(g_w, id, BodyToken(), ea, acc, server, server - GmtOffset(), sym, TimeframeName(InpTimeframe));
   MqlRates rates[];
   int want = InpWarmupBars < 0 ? 0 : (InpWarmupBars > EA_MAX_HELLO_BARS ? EA_MAX_HELLO_BARS : InpWarmupBars);
   int n = want > 0 ? CopyRates(_Symbol, BarsTf(), 1, want, rates) : 0;   // closed bars, oldest first
   if(want > 0 && n <= 0)
     {
      // without history the sidecar could not warm up; try again later (entries stay closed)
      Log(LOG_SIDECAR, "HISTORY_NOT_READY", LogKv("timeframe", TimeframeName(InpTimeframe)) + " " +
          LogKv("error", IntegerToString(GetLastError())), g_th_sidecar);
      return false;
     }
   for(int i = 0; i < n; i++)
     {
      ProtoBar b;
      FillBar(rates[i], b);
      ProtoWriteBar(g_w, b, sym.digits);
     }
   ProtoHelloEnd(g_w);
   if(Call("hello", id, g_w.Text()) != CALL_OK || g_reply.kind != PROTO_REPLY_ACK)
      return false;
   g_hello_done = true;
   g_last_bar_sent = n > 0 ? rates[n - 1].time : 0;
   LogWrite(LOG_SIDECAR, "HELLO_ACK", LogKv("transport", g_tr.Name()) + " " + LogKv("bars", IntegerToString(n)));
   return true;
  }

void SendHeartbeat(void)
  {
   long server = NowServer();
   string id = NextId("b");
   Call("heartbeat", id, ProtoHeartbeatJson(id, BodyToken(), AccountInfoInteger(ACCOUNT_LOGIN), _Symbol, server, server - GmtOffset(),
                                            g_tester));
  }

void SendCalendar(void)
  {
   if(g_tester)
      return;   // no calendar history in the tester
   string currencies[2];
   currencies[0] = SymbolInfoString(_Symbol, SYMBOL_CURRENCY_BASE);
   currencies[1] = SymbolInfoString(_Symbol, SYMBOL_CURRENCY_PROFIT);
   datetime from = TimeTradeServer();
   datetime to = from + 7 * 86400;
   long offset = GmtOffset();
   string id = NextId("c");
   ProtoCalendarBegin(g_w, id, BodyToken(), AccountInfoInteger(ACCOUNT_LOGIN));
   int count = 0;
   for(int c = 0; c < 2; c++)
     {
      if(currencies[c] == "" || (c == 1 && currencies[1] == currencies[0]))
         continue;
      MqlCalendarValue values[];
      ResetLastError();
      int n = CalendarValueHistory(values, from, to, NULL, currencies[c]);
      if(n < 0)
        {
         Log(LOG_NEWS, "CALENDAR_FAILED", LogKv("currency", currencies[c]) + " " + LogKv("error", IntegerToString(GetLastError())), g_th_sidecar);
         continue;
        }
      for(int i = 0; i < n && count < EA_MAX_EVENTS; i++)
        {
         MqlCalendarEvent ev;
         if(!CalendarEventById(values[i].event_id, ev))
            continue;
         if(ev.importance != CALENDAR_IMPORTANCE_MODERATE && ev.importance != CALENDAR_IMPORTANCE_HIGH)
            continue;
         long t = (long)values[i].time - offset;
         if(t <= 0 || ev.name == "")
            continue;
         ProtoEvent e;
         e.id = IntegerToString((long)values[i].id);
         e.time_gmt = t;
         e.currency = currencies[c];
         e.importance = ev.importance == CALENDAR_IMPORTANCE_HIGH ? "high" : "medium";
         e.name = ScSubstr(ev.name, 0, 200);
         e.has_actual = values[i].actual_value != LONG_MIN;
         e.actual = e.has_actual ? (double)values[i].actual_value / 1000000.0 : 0.0;
         e.has_forecast = values[i].forecast_value != LONG_MIN;
         e.forecast = e.has_forecast ? (double)values[i].forecast_value / 1000000.0 : 0.0;
         e.has_previous = values[i].prev_value != LONG_MIN;
         e.previous = e.has_previous ? (double)values[i].prev_value / 1000000.0 : 0.0;
         ProtoWriteEvent(g_w, e);
         count++;
        }
     }
   ProtoCalendarEnd(g_w);
   if(Call("calendar", id, g_w.Text()) == CALL_OK && g_reply.kind == PROTO_REPLY_ACK)
      LogWrite(LOG_NEWS, "CALENDAR_SENT", LogKv("events", IntegerToString(count)));
  }

// A deal whose queued message is lost (unreadable, or pushed out of a full queue): the next read,
// which an entry now makes first, queues it again from the history.
void ForgetQueuedDeal(const string id)
  {
   if(StringFind(id, "d-") != 0)
      return;
   DealSyncForget(g_dsync, (ulong)StringToInteger(StringSubstr(id, 2)));
   g_dclock.last_read = 0;
  }

// Sends queued trade messages (oldest first) until one is not acknowledged. Returns false when
// the sidecar did not answer (the caller then skips its own request).
bool FlushQueue(const int max_messages)
  {
   bool answered = true;
   int sent = 0;
   bool changed = false;
   while(ArraySize(g_queue) > 0 && sent < max_messages)
     {
      sent++;
      int rc = Call("trade", g_queue_ids[0], ProtoTradeWithToken(g_queue[0], BodyToken()));
      if(rc == CALL_NO_REPLY)
         answered = false;
      bool drop = false;
      if(rc == CALL_OK && g_reply.kind == PROTO_REPLY_ACK)
         drop = true;
      else
         if(rc == CALL_OK && g_reply.kind == PROTO_REPLY_ERROR &&
            (g_reply.error_code == "BAD_REQUEST" || g_reply.error_code == "BAD_JSON" || g_reply.error_code == "TOO_LARGE"))
           {
            // a message the sidecar will never accept would block the queue (and entries) forever
            LogWrite(LOG_SIDECAR, "TRADE_DROPPED", LogKv("id", g_queue_ids[0]) + " " + LogKv("code", g_reply.error_code) + " " +
                     LogKv("message", g_reply.error_message));
            // unreadable bytes (a damaged queue file): the next history read builds the message again
            if(g_reply.error_code != "BAD_REQUEST")
               ForgetQueuedDeal(g_queue_ids[0]);
            drop = true;
           }
      if(!drop)
         break;
      ArrayRemove(g_queue, 0, 1);
      ArrayRemove(g_queue_ids, 0, 1);
      changed = true;
     }
   if(changed)
      SaveQueue();
   return answered;
  }

//+------------------------------------------------------------------+
//| deals                                                            |
//+------------------------------------------------------------------+
// Queues the trade message of one deal, read from the history the caller selected (by
// HistoryDealSelect, or HistorySelect for a whole window). Returns false when that deal's message
// is already waiting in the queue. The caller saves the queue.
bool QueueDeal(const ulong deal)
  {
   string id = "d-" + IntegerToString((long)deal);
   for(int i = 0; i < ArraySize(g_queue_ids); i++)
      if(g_queue_ids[i] == id)
         return false;
   long type = HistoryDealGetInteger(deal, DEAL_TYPE);
   ulong position = (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
   string symbol = HistoryDealGetString(deal, DEAL_SYMBOL);
   long entry = HistoryDealGetInteger(deal, DEAL_ENTRY);
   ProtoTrade t;
   t.login = g_login;   // the account whose queue file holds it
   t.deal = (long)deal;
   t.order = HistoryDealGetInteger(deal, DEAL_ORDER);
   t.position = (long)position;
   t.symbol = symbol;
   t.side = type == DEAL_TYPE_BUY ? "buy" : "sell";
   t.entry = entry == DEAL_ENTRY_IN ? "in" : entry == DEAL_ENTRY_OUT ? "out" : entry == DEAL_ENTRY_INOUT ? "inout" : "out_by";
   t.volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
   t.price = HistoryDealGetDouble(deal, DEAL_PRICE);
   t.profit = HistoryDealGetDouble(deal, DEAL_PROFIT);
   t.commission = HistoryDealGetDouble(deal, DEAL_COMMISSION);
   t.swap = HistoryDealGetDouble(deal, DEAL_SWAP);
   t.time = (long)HistoryDealGetInteger(deal, DEAL_TIME);
   t.comment = HistoryDealGetString(deal, DEAL_COMMENT);
   int k = ArraySize(g_queue);
   if(k >= EA_QUEUE_MAX)
     {
      LogWrite(LOG_SIDECAR, "QUEUE_FULL", LogKv("dropped_oldest", g_queue_ids[0]));
      ForgetQueuedDeal(g_queue_ids[0]);
      ArrayRemove(g_queue, 0, 1);
      ArrayRemove(g_queue_ids, 0, 1);
      k--;
     }
   ArrayResize(g_queue, k + 1);
   ArrayResize(g_queue_ids, k + 1);
   g_queue[k] = ProtoTradeJson(id, "", t, (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS), g_tester);  // token added when sent
   g_queue_ids[k] = id;
   // a closed position no longer needs its management anchors
   if(entry != DEAL_ENTRY_IN && ExecSelectPosition(position) == 0)
     {
      GlobalVariableDel(GvName(position, "r"));
      GlobalVariableDel(GvName(position, "v"));
      GlobalVariableDel(GvName(position, "p"));
     }
   return true;
  }

// DealSync.mqh reads the window HistorySelect loaded through these.
int DealSyncHistoryTotal(void) { return HistoryDealsTotal(); }

bool DealSyncHistoryRow(const int index, DealSyncRow &row)
  {
   ulong d = HistoryDealGetTicket(index);
   if(d == 0)
      return false;
   long type = HistoryDealGetInteger(d, DEAL_TYPE);
   row.ticket = d;
   row.time = HistoryDealGetInteger(d, DEAL_TIME);
   row.buy_or_sell = type == DEAL_TYPE_BUY || type == DEAL_TYPE_SELL;
   row.magic = HistoryDealGetInteger(d, DEAL_MAGIC);
   long entry = HistoryDealGetInteger(d, DEAL_ENTRY);
   row.opens = entry == DEAL_ENTRY_IN || entry == DEAL_ENTRY_INOUT;
   row.position = (ulong)HistoryDealGetInteger(d, DEAL_POSITION_ID);
   return true;
  }

bool DealSyncPositionManaged(const ulong position) { return position != 0 && GlobalVariableCheck(GvName(position, "v")); }

// Reads the deal history from a day behind the watermark (InpDealSyncDays back the first time)
// and queues, oldest first, this EA's deals not queued yet: deals filled while the terminal was
// closed, and transactions the terminal dropped. The watermark moves only after a complete read
// (connected DEAL_SYNC_SETTLE_SEC) whose deals are saved in the queue file.
void SyncDeals(void)
  {
   long now = NowServer();   // the history window and the watermark are server times
   long mono = NowMono();    // the read clock is not
   if(ArraySize(g_queue) + DEAL_SYNC_BATCH > EA_QUEUE_MAX)
     {
      // a full queue drops its oldest message: wait until the sidecar took some (entries wait too)
      Log(LOG_TRADE, "HISTORY_READ_DEFERRED", LogKv("queued", IntegerToString(ArraySize(g_queue))), g_th_sidecar);
      return;
     }
   long from = DealSyncFrom(g_dsync, now, InpDealSyncDays);
   if(!HistorySelect((datetime)from, (datetime)(now + 86400)))
     {
      Log(LOG_TRADE, "HISTORY_UNAVAILABLE", LogKv("error", IntegerToString(GetLastError())), g_th_sidecar);
      return;   // retried on the next timer event
     }
   bool complete = DealSyncComplete(g_dclock, mono);
   DealSyncCollect(g_dbatch, g_dsync, (long)InpMagic);
   // no HistoryDealSelect from here on: it would replace the window HistorySelect loaded
   int queued = 0;
   for(int i = 0; i < g_dbatch.count; i++)
      if(QueueDeal(g_dbatch.ticket[i]))
         queued++;
   if(queued > 0)
      SaveQueue();
   long before = g_dsync.synced_to;
   DealSyncFinish(g_dsync, g_dbatch, now, complete && g_queue_saved);
   if(g_dsync.synced_to != before)
      g_dsync_dirty = true;
   DealSyncClockRead(g_dclock, mono, complete, g_dbatch.dropped > 0);
   if(queued > 0 || g_dbatch.dropped > 0 || g_dbatch.opened_dropped > 0)
      LogWrite(LOG_TRADE, "DEALS_SYNCED", LogKv("queued", IntegerToString(queued)) + " " +
               LogKv("left_for_next_read", IntegerToString(g_dbatch.dropped)) + " " +
               LogKv("from_server", IntegerToString(from)) + " " + LogKv("complete", complete && g_queue_saved ? "yes" : "no"));
  }

// Why an entry must wait ("" = it need not). With the history reads on, an entry first reads
// the history when the last read is a few seconds old, so a deal the terminal dropped is queued
// (and the entry waits for the sidecar to take it) before the next position is sized.
string DealsBlock(void)
  {
   if(g_tester || InpDealSyncMin <= 0)
      return ArraySize(g_queue) > 0 ? "DEALS_QUEUED" : "";
   long now = NowMono();
   DealSyncClockConnection(g_dclock, TerminalInfoInteger(TERMINAL_CONNECTED) != 0, now);
   if(DealSyncReadBeforeEntry(g_dclock, now))
      SyncDeals();
   return DealSyncEntryBlock(g_dclock, ArraySize(g_queue));
  }

// Once a second from OnTimer (DealSyncReadDue says when); `now` is NowMono().
void DealSyncTimer(const long now)
  {
   if(g_tester || InpDealSyncMin <= 0)
      return;
   DealSyncClockConnection(g_dclock, TerminalInfoInteger(TERMINAL_CONNECTED) != 0, now);
   if(DealSyncReadDue(g_dclock, now, InpDealSyncMin, ArraySize(g_queue)))
      SyncDeals();
  }

//+------------------------------------------------------------------+
//| management                                                       |
//+------------------------------------------------------------------+
void CurrentManageParams(ManageParams &p)
  {
   p = g_defaults;
   if(!g_have_verdict || !g_verdict.has_manage)
      return;
   p.breakeven_r = g_verdict.manage_val[PROTO_M_BREAKEVEN_R];
   p.partial_r = g_verdict.manage_val[PROTO_M_PARTIAL_R];
   p.partial_fraction = g_verdict.manage_val[PROTO_M_PARTIAL_FRACTION];
   p.trail_atr = g_verdict.manage_val[PROTO_M_TRAIL_ATR];
   p.trail_distance = g_verdict.manage_val[PROTO_M_TRAIL_DISTANCE];
   p.breakeven_offset = g_verdict.manage_has[PROTO_M_BREAKEVEN_BUFFER] ? g_verdict.manage_val[PROTO_M_BREAKEVEN_BUFFER] : 0.0;
  }

double CurrentAtr(void)
  {
   if(g_atr == INVALID_HANDLE)
      return 0.0;
   double buf[];
   if(CopyBuffer(g_atr, 0, 1, 1, buf) != 1 || !MathIsValidNumber(buf[0]))
      return 0.0;
   return buf[0];
  }

void ManagePositions(const MqlTick &tick)
  {
   ManageParams p;
   CurrentManageParams(p);
   ManageMarket m;
   m.bid = tick.bid;
   m.ask = tick.ask;
   m.atr = CurrentAtr();
   m.point = SymbolInfoDouble(_Symbol, SYMBOL_POINT);
   m.tick_size = SymbolInfoDouble(_Symbol, SYMBOL_TRADE_TICK_SIZE);
   m.digits = (int)SymbolInfoInteger(_Symbol, SYMBOL_DIGITS);
   m.stops_level = (int)SymbolInfoInteger(_Symbol, SYMBOL_TRADE_STOPS_LEVEL);
   m.freeze_level = (int)SymbolInfoInteger(_Symbol, SYMBOL_TRADE_FREEZE_LEVEL);
   m.volume_min = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_MIN);
   m.volume_step = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_STEP);
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong ticket = PositionGetTicket(i);
      if(ticket == 0 || !IsOurs() || PositionGetString(POSITION_SYMBOL) != _Symbol || g_exec.BackingOff(ticket, NowMono()))
         continue;
      ManagePosition pos;
      pos.side = PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY ? MANAGER_SIDE_BUY : MANAGER_SIDE_SELL;
      pos.volume = PositionGetDouble(POSITION_VOLUME);
      pos.price_open = PositionGetDouble(POSITION_PRICE_OPEN);
      pos.sl = PositionGetDouble(POSITION_SL);
      pos.tp = PositionGetDouble(POSITION_TP);
      // initial risk distance and volume, remembered per ticket (survive restarts)
      string gr = GvName(ticket, "r");
      string gv = GvName(ticket, "v");
      if(!GlobalVariableCheck(gv))
        {
         double d = pos.sl > 0.0 ? (pos.side == MANAGER_SIDE_BUY ? pos.price_open - pos.sl : pos.sl - pos.price_open) : 0.0;
         GlobalVariableSet(gr, d > 0.0 ? d : 0.0);
         GlobalVariableSet(gv, pos.volume);
         GlobalVariablesFlush();   // a terminal crash must not lose them (partial done / initial R)
        }
      pos.risk_distance = GlobalVariableGet(gr);
      // "p" is set when the partial close is sent: the terminal may show the old volume for a
      // while after the server executed it, and a second partial close must never go out
      pos.partial_done = GlobalVariableCheck(GvName(ticket, "p")) || pos.volume < GlobalVariableGet(gv) - m.volume_step * 0.5;
      if(pos.sl <= 0.0 && pos.risk_distance <= 0.0)
        {
         // no stop and no initial stop known: the EA never opens without one, so this position was
         // left unprotected (its stop and the fallback close were refused, or it showed up after the
         // entry-in-flight lock gave up on it). Not kept: closed (a refusal backs off per ticket).
         Log(LOG_TRADE, "UNPROTECTED", LogKv("position", IntegerToString((long)ticket)) + " " +
             LogKv("volume", DoubleToString(pos.volume, 2)), g_th_manage);
         g_exec.Close(ticket, 0.0, "unprotected", NowMono());
         continue;
        }
      if(pos.sl <= 0.0 && pos.risk_distance > 0.0)
        {
         // the stop is gone (removed by hand, or never set): put the initial one back, or close
         bool buy = pos.side == MANAGER_SIDE_BUY;
         g_exec.Protect(ticket, buy, buy ? pos.price_open - pos.risk_distance : pos.price_open + pos.risk_distance, pos.tp, NowMono());
         continue;
        }
      ManageAction a;
      ManagerDecide(pos, m, p, a);
      if(a.reason != "" && a.close_volume <= 0.0 && !a.modify)
         Log(LOG_MANAGE, "HELD", LogKv("position", IntegerToString((long)ticket)) + " " + LogKv("reason", a.reason), g_th_manage);
      if(a.close_volume > 0.0)
        {
         int rc = g_exec.Close(ticket, a.close_volume, "partial", NowMono());
         if(rc == EXEC_OK || rc == EXEC_PARTIAL || rc == EXEC_AMBIGUOUS)
           {
            GlobalVariableSet(GvName(ticket, "p"), 1.0);
            GlobalVariablesFlush();
           }
         if(rc != EXEC_OK && rc != EXEC_PARTIAL)
            continue;   // refused ones back off in the executor
         if(!PositionSelectByTicket(ticket))
            continue;
        }
      if(a.modify)
         g_exec.Modify(ticket, a.new_sl, pos.tp, a.reason, NowMono());   // a refusal backs off in the executor
     }
  }

//+------------------------------------------------------------------+
//| verdict                                                          |
//+------------------------------------------------------------------+
void ApplyCloses(void)
  {
   double step = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_STEP);
   double vmin = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_MIN);
   for(int i = 0; i < g_verdict.close_count; i++)
     {
      ulong ticket = (ulong)g_verdict.close_ticket[i];
      if(!PositionSelectByTicket(ticket) || !IsOurs() || PositionGetString(POSITION_SYMBOL) != _Symbol)
        {
         Log(LOG_TRADE, "CLOSE_UNKNOWN_TICKET", LogKv("position", IntegerToString((long)ticket)), g_th_risk);
         continue;
        }
      double have = PositionGetDouble(POSITION_VOLUME);
      double vol = g_verdict.close_volume[i];
      if(vol < have - 0.0000001)
        {
         vol = SizingFloorToStep(vol, step);
         if(vol < vmin)
           {
            Log(LOG_TRADE, "CLOSE_TOO_SMALL", LogKv("position", IntegerToString((long)ticket)) + " " +
                LogKv("volume", DoubleToString(g_verdict.close_volume[i], 8)), g_th_risk);
            continue;   // never close more than asked because the part is below volume min
           }
         if(have - vol < vmin - 0.0000001)
            vol = have;   // the remainder could not stay open on its own: close it all
        }
      int rc = g_exec.Close(ticket, vol >= have ? 0.0 : vol, "verdict " + g_verdict.action, NowMono());
      if(rc == EXEC_BACKOFF)
         Log(LOG_TRADE, "CLOSE_BACKING_OFF", LogKv("position", IntegerToString((long)ticket)), g_th_risk);
     }
  }

// The management anchors of a new position (initial risk distance and volume), once the terminal
// shows it: right after the fill, or when the entry-in-flight lock sees it (PollEntry).
void RecordEntry(const ulong position, const double sized_sl)
  {
   if(!PositionSelectByTicket(position))
      return;
   double placed_sl = PositionGetDouble(POSITION_SL);   // on the tick grid, as sent
   GlobalVariableSet(GvName(position, "r"), MathAbs(PositionGetDouble(POSITION_PRICE_OPEN) - (placed_sl > 0.0 ? placed_sl : sized_sl)));
   GlobalVariableSet(GvName(position, "v"), PositionGetDouble(POSITION_VOLUME));
   GlobalVariableDel(GvName(position, "p"));
   GlobalVariablesFlush();
  }

// Each tick and timer event: has the entry in flight shown its position yet? (protected then)
void PollEntry(void)
  {
   ulong position = 0;
   if(g_exec.EntryState(NowMono(), position) == EXEC_ENTRY_SEEN && position != 0)
      RecordEntry(position, g_exec.EntrySl());
  }

void ApplyOpen(const MqlTick &tick)
  {
   if(!g_verdict.has_open || g_verdict.action != "open")
      return;
   if(g_verdict.mode == "halted")
     {
      Log(LOG_RISK, "HALTED", LogKv("signal_id", g_verdict.open_signal_id), g_th_risk);
      return;
     }
   string deals = DealsBlock();
   if(deals != "")
     {
      Log(LOG_RISK, "DEALS_PENDING", LogKv("signal_id", g_verdict.open_signal_id) + " " + LogKv("why", deals) + " " +
          LogKv("queued", IntegerToString(ArraySize(g_queue))), g_th_risk);
      return;
     }
   if(g_exec.EntryLocked())
     {
      Log(LOG_RISK, "ENTRY_IN_FLIGHT", LogKv("signal_id", g_verdict.open_signal_id), g_th_risk);
      return;   // the previous entry's position is not visible yet: it would not be counted
     }
   if(NowMono() < g_entry_pause_until)
     {
      Log(LOG_RISK, "ENTRY_PAUSED", LogKv("signal_id", g_verdict.open_signal_id) + " " +
          LogKv("seconds_left", IntegerToString(g_entry_pause_until - NowMono())), g_th_risk);
      return;
     }
   // Netting: one position per symbol, whatever its magic. An entry would merge into a manual or
   // another EA's position (the order's SL/TP replacing that position's) or reverse it. Refused,
   // and the signal stays unused for when the symbol is flat.
   if(!g_exec.Hedging() && PositionSelect(_Symbol))
     {
      g_last_refusal = "NETTING_POSITION_OPEN";
      Log(LOG_RISK, "NETTING_POSITION_OPEN", LogKv("signal_id", g_verdict.open_signal_id) + " " +
          LogKv("position", IntegerToString(PositionGetInteger(POSITION_TICKET))) + " " +
          LogKv("magic", IntegerToString(PositionGetInteger(POSITION_MAGIC))), g_th_risk);
      return;
     }
   bool buy = g_verdict.open_side == "buy";
   string blocked = g_exec.TradeBlock(buy);
   if(blocked != "")
     {
      // nothing can be sent: the signal stays unused for when trading is allowed again
      Log(LOG_RISK, blocked, LogKv("signal_id", g_verdict.open_signal_id), g_th_risk);
      return;
     }
   double price = buy ? tick.ask : tick.bid;
   // the stop must be on the losing side of the closing price; otherwise loss_per_lot is 0 (BAD_STOP)
   double loss_per_lot = (buy ? g_verdict.open_sl < tick.bid : g_verdict.open_sl > tick.ask)
                         ? SizingLossPerLot(_Symbol, buy, price, g_verdict.open_sl) : 0.0;
   if(buy ? g_verdict.open_tp <= tick.ask : g_verdict.open_tp >= tick.bid)
     {
      Log(LOG_RISK, "BAD_TP", LogKv("signal_id", g_verdict.open_signal_id), g_th_risk);
      return;
     }
   GuardAccount acc;
   FillGuardAccount(acc);
   GuardSymbol sym;
   sym.tick_size = SymbolInfoDouble(_Symbol, SYMBOL_TRADE_TICK_SIZE);
   sym.tick_value = SymbolInfoDouble(_Symbol, SYMBOL_TRADE_TICK_VALUE);
   sym.volume_min = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_MIN);
   sym.volume_step = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_STEP);
   sym.volume_max = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_MAX);
   GuardEntry e;
   e.volume = g_verdict.open_volume;
   e.price = price;
   e.loss_per_lot = loss_per_lot;
   e.leverage_cap = g_verdict.leverage_cap;
   e.signal_id = g_verdict.open_signal_id;
   e.spread_points = (tick.ask - tick.bid) / SymbolInfoDouble(_Symbol, SYMBOL_POINT);
   e.sidecar_ok = g_sidecar_ok;
   e.now_gmt = NowGmt();
   e.valid_until = g_verdict.valid_until;
   e.now_server = NowServer();
   GuardDecision d;
   GuardCheckEntry(g_limits, g_state, acc, sym, e, d);
   if(!d.allowed)
     {
      g_last_refusal = d.code;
      Log(LOG_RISK, d.code, LogKv("signal_id", e.signal_id) + " " + d.detail, g_th_risk);
      return;
     }
   if(d.cut)
      LogWrite(LOG_RISK, "CUT_" + d.code, LogKv("signal_id", e.signal_id) + " " + LogKv("volume", DoubleToString(d.volume, 2)) + " " + d.detail);
   double filled = 0.0;
   ulong position = 0;
   int rc = g_exec.Open(buy, d.volume, g_verdict.open_sl, g_verdict.open_tp, e.signal_id, NowMono(), filled, position);
   if(rc != EXEC_REFUSED)
     {
      // the order may have reached the server: the same signal must not open twice
      GuardRememberSignal(g_state, g_limits, e.signal_id, e.now_server);
      SaveState();
     }
   if(rc == EXEC_AMBIGUOUS)
      g_entry_pause_until = NowMono() + EA_AMBIGUOUS_PAUSE_SEC;   // its fill may still show up
   if(rc == EXEC_REJECTED)
      g_entry_pause_until = NowMono() + EA_REJECT_PAUSE_SEC;      // no request per tick to a refusing server
   if(position != 0 && !g_exec.EntryLocked())
      RecordEntry(position, g_verdict.open_sl);
  }

void SendTick(const MqlTick &tick)
  {
   int digits = (int)SymbolInfoInteger(_Symbol, SYMBOL_DIGITS);
   ProtoAccount acc;
   FillAccount(acc);
   string id = NextId("t");
   long server = (long)tick.time;
   ProtoTickBegin(g_w, id, BodyToken(), acc.login, _Symbol, TimeframeName(InpTimeframe), server, server - GmtOffset(),
                  (long)tick.time_msc, tick.bid, tick.ask, digits, acc, g_tester);
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong ticket = PositionGetTicket(i);
      if(ticket == 0 || !IsOurs())
         continue;
      ProtoPosition p;
      p.ticket = (long)ticket;
      p.symbol = PositionGetString(POSITION_SYMBOL);
      p.side = PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY ? "buy" : "sell";
      p.volume = PositionGetDouble(POSITION_VOLUME);
      p.price_open = PositionGetDouble(POSITION_PRICE_OPEN);
      p.sl = PositionGetDouble(POSITION_SL);
      p.tp = PositionGetDouble(POSITION_TP);
      p.profit = PositionGetDouble(POSITION_PROFIT);
      p.swap = PositionGetDouble(POSITION_SWAP);
      p.time = (long)PositionGetInteger(POSITION_TIME);
      p.comment = PositionGetString(POSITION_COMMENT);
      ProtoWritePosition(g_w, p, (int)SymbolInfoInteger(p.symbol, SYMBOL_DIGITS));
     }
   ProtoTickBars(g_w);
   // closed bars since the last one sent
   MqlRates rates[];
   datetime last_closed = iTime(_Symbol, BarsTf(), 1);
   int sent = 0;
   bool bars_read = true;   // false when closed bars are due but could not be read
   if(g_last_bar_sent > 0 && last_closed > g_last_bar_sent)
     {
      int n = CopyRates(_Symbol, BarsTf(), g_last_bar_sent + 1, last_closed, rates);
      bars_read = n > 0;
      int start = n > EA_MAX_TICK_BARS ? n - EA_MAX_TICK_BARS : 0;
      for(int i = start; i < n; i++)
        {
         if(rates[i].time <= g_last_bar_sent || rates[i].time > last_closed)
            continue;
         ProtoBar b;
         FillBar(rates[i], b);
         ProtoWriteBar(g_w, b, digits);
         sent++;
        }
     }
   ProtoTickEnd(g_w);
   int rc = Call("tick", id, g_w.Text());
   if(rc != CALL_OK)
      return;
   if(g_reply.kind != PROTO_REPLY_VERDICT)
      return;
   if(bars_read && last_closed > g_last_bar_sent)
      g_last_bar_sent = last_closed;   // the sidecar has them now (unread bars go with the next tick)
   if(NowGmt() > g_reply.valid_until)
     {
      Log(LOG_SIDECAR, "LATE_VERDICT", LogKv("id", g_reply.id) + " " + LogKv("valid_until", IntegerToString(g_reply.valid_until)), g_th_sidecar);
      return;
     }
   g_verdict = g_reply;
   g_have_verdict = true;
   g_verdict_gmt = NowGmt();
   ApplyCloses();
   ApplyOpen(tick);
  }

void UpdateComment(void)
  {
   long now = NowGmt();
   string verdict = g_have_verdict ? g_verdict.mode + " / " + g_verdict.action + ", " + IntegerToString(now - g_verdict_gmt) + " s ago" +
                    (now > g_verdict.valid_until ? " (expired)" : "") : "none yet";
   string reply_age = g_last_reply_gmt > 0 ? IntegerToString(now - g_last_reply_gmt) + " s ago" : "never";
   string text = (string)EA_NAME + " " + EA_VERSION + " | " + (g_tr != NULL ? g_tr.Name() : "no transport") +
                 "\nsidecar: " + (g_sidecar_ok ? "OK" : "UNREACHABLE (no entries)") + ", last reply " + reply_age +
                 (g_hello_done ? "" : ", hello pending") +
                 "\nverdict: " + verdict +
                 "\nlocks: " + (g_lock == "" ? "none" : g_lock) + (g_last_refusal != "" ? " | last refusal " + g_last_refusal : "") +
                 "\nday start equity " + DoubleToString(g_state.day_start_equity, 2) + ", high-water " + DoubleToString(g_state.hwm, 2) +
                 "\ntrade messages queued: " + IntegerToString(ArraySize(g_queue));
   Comment(text);
  }

// The broker day's closed trade results so far (profit + commission + swap of every buy/sell deal
// since `day_start`, any magic: the balance is the account's), for the anchor of a day whose
// rollover the EA did not see. False when the history cannot be read.
bool DayClosedResult(const long day_start, double &closed)
  {
   closed = 0.0;
   if(!HistorySelect((datetime)day_start, (datetime)(NowServer() + 86400)))
      return false;
   for(int i = HistoryDealsTotal() - 1; i >= 0; i--)
     {
      ulong deal = HistoryDealGetTicket(i);
      if(deal == 0)
         return false;
      long type = HistoryDealGetInteger(deal, DEAL_TYPE);
      if(type == DEAL_TYPE_BUY || type == DEAL_TYPE_SELL)
         closed += HistoryDealGetDouble(deal, DEAL_PROFIT) + HistoryDealGetDouble(deal, DEAL_COMMISSION) +
                   HistoryDealGetDouble(deal, DEAL_SWAP);
     }
   return true;
  }

// The equity floor is the account's, not the chart's: a hit on any chart of this login and magic
// is shared through a terminal global variable (terminal-wide, kept across restarts) holding the
// server time of the hit. Every chart with the floor armed adopts it (saved in its state file):
// it closes its own symbol's positions and refuses entries. A chart whose InpEquityFloorPct is set
// to 0 clears its own hit and the shared one (a chart still armed and hit shares it again: the
// input is set to 0 on every chart of the login and magic). Not in the Strategy Tester.
string FloorGvName(void)
  {
   return "SC.floor." + IntegerToString(g_login) + "." + IntegerToString((long)InpMagic);
  }

void FloorShare(const long floor_before)
  {
   if(g_tester)
      return;
   string name = FloorGvName();
   if(g_limits.equity_floor_pct <= 0.0)
     {
      if(floor_before > 0 && GlobalVariableCheck(name))
        {
         GlobalVariableDel(name);
         GlobalVariablesFlush();
         LogWrite(LOG_ACCOUNT, "EQUITY_FLOOR_CLEARED", LogKv("global", name));
        }
      return;
     }
   if(g_state.floor_time > 0)
     {
      if(!GlobalVariableCheck(name))
        {
         GlobalVariableSet(name, (double)g_state.floor_time);
         GlobalVariablesFlush();
         LogWrite(LOG_RISK, "EQUITY_FLOOR_SHARED", LogKv("global", name) + " " + LogKv("since", IntegerToString(g_state.floor_time)));
        }
      return;
     }
   if(GlobalVariableCheck(name))
     {
      long hit = (long)GlobalVariableGet(name);
      g_state.floor_time = hit > 0 ? hit : 1;
      g_state_dirty = true;
      LogWrite(LOG_RISK, "EQUITY_FLOOR_OTHER_CHART", LogKv("global", name) + " " + LogKv("since", IntegerToString(g_state.floor_time)));
     }
  }

// Equity floor hit (here or on another chart): close this EA's positions on the chart's symbol (the
// EA on each chart closes its own); entries stay refused (EQUITY_FLOOR) until InpEquityFloorPct is
// set to 0.
void FloorFlatten(void)
  {
   for(int i = PositionsTotal() - 1; i >= 0; i--)
     {
      ulong ticket = PositionGetTicket(i);
      if(ticket == 0 || !IsOurs() || PositionGetString(POSITION_SYMBOL) != _Symbol)
         continue;
      g_exec.Close(ticket, 0.0, "equity floor", NowMono());   // backs off per ticket after a refusal
     }
  }

// A day anchor rebuilt (or taken from the equity) before the terminal's history had settled may
// miss the day's closed deals the terminal had not downloaded yet (DEAL_SYNC_SETTLE_SEC). Once the
// connection has settled the rebuild is made once more, and may only raise the anchor: a higher
// day-start equity makes the daily loss limit stricter, never looser. Not in the Strategy Tester
// (its history is complete from the start).
void DayAnchorRecheck(const long now)
  {
   if(g_anchor_recheck_day == 0)
      return;
   if(g_state.day_start != g_anchor_recheck_day || GuardDayStart(now, g_limits.day_offset_hours) != g_anchor_recheck_day)
     {
      g_anchor_recheck_day = 0;   // another day has started: anchored on its own
      return;
     }
   long mono = NowMono();
   DealSyncClockConnection(g_dclock, TerminalInfoInteger(TERMINAL_CONNECTED) != 0, mono);
   if(!DealSyncComplete(g_dclock, mono))
      return;
   double closed = 0.0;
   if(!DayClosedResult(g_anchor_recheck_day, closed))
      return;   // retried on the next event
   g_anchor_recheck_day = 0;
   double balance = AccountInfoDouble(ACCOUNT_BALANCE);
   double rebuilt = balance - closed;
   double before = g_state.day_start_equity;
   bool raise = MathIsValidNumber(rebuilt) && balance > 0.0 && rebuilt > before;
   if(raise)
     {
      g_state.day_start_equity = rebuilt;
      SaveState();
     }
   LogWrite(LOG_ACCOUNT, raise ? "DAY_ANCHOR_RAISED" : "DAY_ANCHOR_CONFIRMED", LogKv("day_start_equity", DoubleToString(g_state.day_start_equity, 2)) +
            " " + LogKv("before", DoubleToString(before, 2)) + " " + LogKv("day_closed", DoubleToString(closed, 2)));
  }

void AccountTick(void)
  {
   double equity = AccountInfoDouble(ACCOUNT_EQUITY);
   long day = g_state.day_start;
   long floor_time = g_state.floor_time;
   long now = NowServer();
   // a new day the EA did not see start: rebuild its anchor from the deal history
   double day_closed = 0.0;
   bool history_ok = GuardDayHistoryNeeded(g_state, g_limits, now) &&
                     DayClosedResult(GuardDayStart(now, g_limits.day_offset_hours), day_closed);
   string anchor = "";
   if(GuardObserve(g_state, g_limits, now, equity, AccountInfoDouble(ACCOUNT_BALANCE), history_ok, day_closed, anchor))
      g_state_dirty = true;
   if(anchor == "DAY_ANCHOR_REBUILT" || anchor == "DAY_ANCHOR_NO_HISTORY")
      g_anchor_recheck_day = g_tester ? 0 : g_state.day_start;
   else
      if(anchor != "")
         g_anchor_recheck_day = 0;   // a witnessed rollover: the equity at that moment is the anchor
   DayAnchorRecheck(now);
   if(anchor != "")
      LogWrite(LOG_ACCOUNT, anchor, LogKv("day_start_equity", DoubleToString(g_state.day_start_equity, 2)) + " " +
               LogKv("equity", DoubleToString(equity, 2)) + " " + LogKv("day_closed", DoubleToString(day_closed, 2)));
   FloorShare(floor_time);   // a hit here tells the other charts; one there is adopted here
   // a new broker day or a floor hit is saved at once; a rising high-water mark at most every 60 s
   if(g_state_dirty && (g_state.day_start != day || g_state.floor_time != floor_time || NowMono() - g_state_saved >= 60))
      SaveState();
   GuardAccount acc;
   FillGuardAccount(acc);
   string detail = "";
   string lock = GuardAccountLock(g_limits, g_state, acc, detail);
   if(lock != g_lock)
     {
      LogWrite(lock != "" ? LOG_RISK : LOG_ACCOUNT, lock != "" ? lock : "UNLOCKED", detail);
      g_lock = lock;
     }
   if(lock == "EQUITY_FLOOR")
      FloorFlatten();
  }

//+------------------------------------------------------------------+
//| events                                                           |
//+------------------------------------------------------------------+
// The rest of the start-up, once the account is known. While the login is 0 or the terminal is not
// connected, ACCOUNT_MARGIN_MODE and the login itself are not the account's: the state files are
// keyed by the login (a 0 login would load other anchors and reset the day) and the executor
// would take a hedging account for netting. Nothing trades or is saved until then.
bool EnsureReady(void)
  {
   if(g_ready)
      return true;
   if(AccountInfoInteger(ACCOUNT_LOGIN) == 0 || (!g_tester && TerminalInfoInteger(TERMINAL_CONNECTED) == 0))
     {
      Log(LOG_ACCOUNT, "WAITING_FOR_ACCOUNT", LogKv("login", IntegerToString(AccountInfoInteger(ACCOUNT_LOGIN))) + " " +
          LogKv("connected", TerminalInfoInteger(TERMINAL_CONNECTED) != 0 ? "yes" : "no"), g_th_sidecar);
      return false;
     }
   g_login = AccountInfoInteger(ACCOUNT_LOGIN);   // before anything keyed by it
   LoadState();
   LoadQueue();
   LoadDealCursor();
   g_exec.Init(_Symbol, InpMagic, (ulong)(InpDeviationPts > 0 ? InpDeviationPts : 0), InpRetries, InpEntryInFlightSec);
   g_ready = true;
   LogWrite(LOG_ACCOUNT, "READY", LogKv("login", IntegerToString(g_login)) + " " +
            LogKv("margin_mode", g_exec.Hedging() ? "hedging" : "netting"));
   AccountTick();
   SendHello();   // failure is fine: retried on ticks and on the timer, entries stay closed meanwhile
   return true;
  }

int OnInit(void)
  {
   g_tester = (bool)MQLInfoInteger(MQL_TESTER);
   // re-init after a chart change keeps the globals: start the session over
   g_hello_done = false;
   g_have_verdict = false;
   g_sidecar_ok = false;
   g_retry_at = 0;
   g_entry_pause_until = 0;
   LogThrottleReset(g_th_sidecar);
   LogThrottleReset(g_th_risk);
   LogThrottleReset(g_th_manage);
   GuardLimitsDefaults(g_limits);
   g_limits.max_risk_pct = InpMaxRiskPct;
   g_limits.max_leverage = InpMaxLeverage;
   g_limits.daily_loss_pct = InpDailyLossPct;
   g_limits.floating_loss_pct = InpFloatingLossPct;
   g_limits.max_drawdown_pct = InpMaxDrawdownPct;
   g_limits.max_positions = InpMaxPositions;
   g_limits.max_lot = InpMaxLot;
   g_limits.max_spread_points = InpMaxSpreadPts;
   g_limits.dup_window_sec = InpDupWindowSec;
   g_limits.day_offset_hours = InpDayOffsetHours;
   g_limits.equity_floor_pct = InpEquityFloorPct;
   string errors = GuardLimitsErrors(g_limits);
   if(InpTimeoutMs < 10 || InpTimeoutMs > 60000)
      errors += "InpTimeoutMs must be in 10..60000; ";
   if(InpHelloTimeoutMs < 10 || InpHelloTimeoutMs > 60000)
      errors += "InpHelloTimeoutMs must be in 10..60000; ";
   if(InpCalendarTimeoutMs < 10 || InpCalendarTimeoutMs > 60000)
      errors += "InpCalendarTimeoutMs must be in 10..60000; ";
   if(InpTesterTimeoutMs < 1000 || InpTesterTimeoutMs > 600000)
      errors += "InpTesterTimeoutMs must be in 1000..600000; ";
   if(InpEntryInFlightSec < 1 || InpEntryInFlightSec > 600)
      errors += "InpEntryInFlightSec must be in 1..600; ";
   if(InpBackoffMs < 0 || InpBackoffMs > 60000)
      errors += "InpBackoffMs must be in 0..60000; ";
   if(InpDealSyncMin < 0 || InpDealSyncMin > 720)
      errors += "InpDealSyncMin must be in 0..720 (a read must come well within the day each read looks back); ";
   if(InpDealSyncDays < 1 || InpDealSyncDays > DEAL_SYNC_MAX_DAYS)
      errors += "InpDealSyncDays must be in 1.." + IntegerToString(DEAL_SYNC_MAX_DAYS) + "; ";
   if(InpPartialFraction < 0.0 || InpPartialFraction >= 1.0)
      errors += "InpPartialFraction must be in [0, 1); ";
   if(InpAtrPeriod < 1)
      errors += "InpAtrPeriod must be >= 1; ";
   if(InpTransport == SC_TRANSPORT_HTTP && g_tester)
      errors += "the HTTP transport does not work in the Strategy Tester (WebRequest is not executed): use ZeroMQ; ";
   if(InpTransport == SC_TRANSPORT_ZMQ && !MQLInfoInteger(MQL_DLLS_ALLOWED))
      errors += "ZeroMQ needs 'Allow DLL imports' (EA properties > Common); ";
   if(errors != "")
     {
      LogWrite(LOG_CONFIG, "BAD_INPUTS", LogKv("errors", errors));
      return INIT_PARAMETERS_INCORRECT;
     }
   ManageParamsDefaults(g_defaults);
   double point = SymbolInfoDouble(_Symbol, SYMBOL_POINT);
   g_defaults.breakeven_r = InpBreakevenR;
   g_defaults.partial_r = InpPartialR;
   g_defaults.partial_fraction = InpPartialFraction;
   g_defaults.trail_atr = InpTrailAtr;
   g_defaults.trail_distance = InpTrailPoints * point;
   g_defaults.breakeven_offset = InpBreakevenBufferPts * point;
   if(!g_tester)
      FolderCreate("Sidecar");   // may already exist; a failed write is logged by WriteText
   if(!SymbolSelect(_Symbol, true))
      LogWrite(LOG_CONFIG, "SYMBOL_SELECT_FAILED", LogKv("symbol", _Symbol));
   g_ready = false;
   g_anchor_recheck_day = 0;
   g_login = 0;   // a re-init (an account switch among them) keys its files by the login it loads
   g_atr = iATR(_Symbol, BarsTf(), InpAtrPeriod);
   if(g_atr == INVALID_HANDLE)
      LogWrite(LOG_CONFIG, "ATR_UNAVAILABLE", LogKv("error", IntegerToString(GetLastError())));
   if(InpTransport == SC_TRANSPORT_ZMQ)
      g_tr = new CZmqTransport(InpZmqEndpoint, InpTimeoutMs, InpToken);
   else
      g_tr = new CHttpTransport(InpHttpBase, InpTimeoutMs, InpToken);
   if(!g_tr.Open())
      LogWrite(LOG_SIDECAR, "OPEN_FAILED", LogKv("transport", g_tr.Name()) + " " + LogKv("detail", g_tr.LastError()));
   EnsureReady();   // may wait for the account: then on the next tick or timer event
   EventSetTimer(1);
   UpdateComment();
   return INIT_SUCCEEDED;
  }

void OnDeinit(const int reason)
  {
   EventKillTimer();
   if(g_ready)
     {
      // never write files under a login that was not known (they would replace nothing useful
      // or, with a 0 login, be loaded by the next account-less start)
      SaveState();
      SaveQueue();
      if(g_dsync_dirty)
         SaveDealCursor();
     }
   if(g_tr != NULL)
     {
      g_tr.Close();
      delete g_tr;
      g_tr = NULL;
     }
   if(g_atr != INVALID_HANDLE)
      IndicatorRelease(g_atr);
   Comment("");
   LogWrite(LOG_ACCOUNT, "STOPPED", LogKv("reason", IntegerToString(reason)));
  }

void OnTick(void)
  {
   MqlTick tick;
   if(!SymbolInfoTick(_Symbol, tick) || tick.bid <= 0.0 || tick.ask <= 0.0)
      return;
   if(!EnsureReady())
      return;
   AccountTick();
   PollEntry();                                 // an entry in flight: protected once it shows up
   ManagePositions(tick);                       // never waits for the sidecar
   if(!g_hello_done && NowMono() - g_last_hello_try >= InpHelloRetrySec)
      SendHello();
   if(g_hello_done && FlushQueue(2))
      SendTick(tick);
   else
      g_sidecar_ok = false;
   UpdateComment();
  }

void OnTimer(void)
  {
   if(!EnsureReady())
      return;
   AccountTick();   // the limits and the equity floor act on a chart whose symbol has no ticks too
   PollEntry();
   long now = NowMono();   // every check here is an interval
   if(g_state_dirty && now - g_state_saved >= 60)
      SaveState();
   DealSyncTimer(now);
   if(g_dsync_dirty)
      SaveDealCursor();
   if(!g_hello_done && now - g_last_hello_try >= InpHelloRetrySec)
      SendHello();
   if(g_hello_done && FlushQueue(20))
     {
      if(InpHeartbeatSec > 0 && now - g_last_heartbeat >= InpHeartbeatSec)
        {
         g_last_heartbeat = now;
         SendHeartbeat();
        }
      if(InpCalendarMin > 0 && now - g_last_calendar >= InpCalendarMin * 60)
        {
         g_last_calendar = now;
         SendCalendar();
        }
     }
   UpdateComment();
  }

void OnTradeTransaction(const MqlTradeTransaction &trans, const MqlTradeRequest &request, const MqlTradeResult &result)
  {
   if(!g_ready || trans.type != TRADE_TRANSACTION_DEAL_ADD || trans.deal == 0)
      return;   // before the account is known the history read at start-up finds the deal
   if(!HistoryDealSelect(trans.deal))
      return;   // not in the history yet: the next history sync finds it
   long type = HistoryDealGetInteger(trans.deal, DEAL_TYPE);
   if(type != DEAL_TYPE_BUY && type != DEAL_TYPE_SELL)
      return;
   ulong position = (ulong)HistoryDealGetInteger(trans.deal, DEAL_POSITION_ID);
   if(!DealSyncIsOurs(HistoryDealGetInteger(trans.deal, DEAL_MAGIC), (long)InpMagic, false, DealSyncPositionManaged(position)))
      return;
   if(QueueDeal(trans.deal))
      SaveQueue();
   DealSyncNote(g_dsync, trans.deal);   // the watermark stays: only a history read moves it
  }

//+------------------------------------------------------------------+
