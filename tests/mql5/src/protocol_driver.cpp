// Protocol round trips.
//   protocol_driver encode : stdin = wire-shaped JSON messages (hello/tick/trade/calendar/heartbeat);
//                            each is read field by field and rebuilt with the MQL5 encoders.
//                            stdout = the encoder's JSON, one line per message.
//   protocol_driver parse  : stdin = replies (verdict/ack/error) as produced by the sidecar;
//                            stdout = the MQL5 parser's view of each, in a canonical JSON form.
//   protocol_driver sync   : stdin = one history read per line (the account's deals, the cursor
//                            file, the EA's magic); stdout = {"queued": [the trade messages the
//                            EA queues, in order], "cursor": the cursor file after the read}.
#include "driver_common.h"

#include "deal_history_table.h"

static ProtoAccount ReadAccount(const CJsonFlat &j, const string &p)
{
   ProtoAccount a;
   a.login = InL(j, p + ".login", 0);
   a.server = InS(j, p + ".server", "");
   a.currency = InS(j, p + ".currency", "");
   a.leverage = InL(j, p + ".leverage", 0);
   a.balance = InD(j, p + ".balance", 0.0);
   a.equity = InD(j, p + ".equity", 0.0);
   a.margin = InD(j, p + ".margin", 0.0);
   a.free_margin = InD(j, p + ".free_margin", 0.0);
   return a;
}

static void WriteBars(CJsonWriter &w, const CJsonFlat &j, int digits)
{
   int n = j.Count("bars", JSON_T_ARR);
   for(int i = 0; i < n; i++)
   {
      string p = "bars[" + IntegerToString(i) + "]";
      ProtoBar b;
      b.time = InL(j, p + "[0]", 0);
      b.open = InD(j, p + "[1]", 0.0);
      b.high = InD(j, p + "[2]", 0.0);
      b.low = InD(j, p + "[3]", 0.0);
      b.close = InD(j, p + "[4]", 0.0);
      b.tick_volume = InL(j, p + "[5]", 0);
      b.spread = (int)InL(j, p + "[6]", 0);
      ProtoWriteBar(w, b, digits);
   }
}

// A trade message's fields at `prefix` (wire messages: "", history rows: "history[i]."); the
// side is read from `side_key` ("side" on the wire, "type" in a history row).
static ProtoTrade ReadTrade(const CJsonFlat &j, const string &prefix, const string &side_key, long login)
{
   ProtoTrade t;
   t.login = login;
   t.deal = InL(j, prefix + "deal", 0);
   t.order = InL(j, prefix + "order", 0);
   t.position = InL(j, prefix + "position", 0);
   t.symbol = InS(j, prefix + "symbol", "");
   t.side = InS(j, prefix + side_key, "");
   t.entry = InS(j, prefix + "entry", "");
   t.volume = InD(j, prefix + "volume", 0.0);
   t.price = InD(j, prefix + "price", 0.0);
   t.profit = InD(j, prefix + "profit", 0.0);
   t.commission = InD(j, prefix + "commission", 0.0);
   t.swap = InD(j, prefix + "swap", 0.0);
   t.time = InL(j, prefix + "time", 0);
   t.comment = InS(j, prefix + "comment", "");
   return t;
}

static string Encode(const CJsonFlat &j)
{
   string type = InS(j, "type", "");
   string id = InS(j, "id", "");
   string token = InS(j, "token", "");
   int digits = (int)InL(j, "digits", 5);  // driver input only: the symbol's digits
   bool tester = InB(j, "tester", false);  // tick/trade/heartbeat (hello: ea.tester)
   CJsonWriter w;
   if(type == "hello")
   {
      ProtoEa ea;
      ea.name = InS(j, "ea.name", "");
      ea.version = InS(j, "ea.version", "");
      ea.magic = InL(j, "ea.magic", 0);
      ea.tester = InB(j, "ea.tester", false);
      ea.day_offset_hours = InD(j, "ea.day_offset_hours", 0.0);
      ea.has_limits = j.TypeOf("ea.limits") == JSON_T_OBJ;  // as given: absent = an older EA's hello
      ea.limits.max_risk_pct = InD(j, "ea.limits.max_risk_pct", 0.0);
      ea.limits.max_leverage = InD(j, "ea.limits.max_leverage", 0.0);
      ea.limits.daily_loss_pct = InD(j, "ea.limits.daily_loss_pct", 0.0);
      ea.limits.floating_loss_pct = InD(j, "ea.limits.floating_loss_pct", 0.0);
      ea.limits.max_drawdown_pct = InD(j, "ea.limits.max_drawdown_pct", 0.0);
      ea.limits.max_positions = (int)InL(j, "ea.limits.max_positions", 0);
      ea.limits.equity_floor_pct = InD(j, "ea.limits.equity_floor_pct", 0.0);
      ProtoSymbol s;
      s.name = InS(j, "symbol.name", "");
      s.base = InS(j, "symbol.base", "");
      s.quote = InS(j, "symbol.quote", "");
      s.digits = (int)InL(j, "symbol.digits", 5);
      s.point = InD(j, "symbol.point", 0.0);
      s.tick_size = InD(j, "symbol.tick_size", 0.0);
      s.tick_value = InD(j, "symbol.tick_value", 0.0);
      s.contract_size = InD(j, "symbol.contract_size", 0.0);
      s.volume_min = InD(j, "symbol.volume_min", 0.0);
      s.volume_step = InD(j, "symbol.volume_step", 0.0);
      s.volume_max = InD(j, "symbol.volume_max", 0.0);
      s.stops_level = (int)InL(j, "symbol.stops_level", 0);
      s.freeze_level = (int)InL(j, "symbol.freeze_level", 0);
      ProtoAccount a = ReadAccount(j, "account");
      ProtoHelloBegin(w, id, token, ea, a, InL(j, "time.server", 0), InL(j, "time.gmt", 0), s, InS(j, "timeframe", ""));
      WriteBars(w, j, s.digits);
      ProtoHelloEnd(w);
      return w.Text();
   }
   if(type == "tick")
   {
      ProtoAccount a = ReadAccount(j, "account");
      ProtoTickBegin(w, id, token, InL(j, "login", 0), InS(j, "symbol", ""), InS(j, "timeframe", ""),
                     InL(j, "time.server", 0), InL(j, "time.gmt", 0), InL(j, "time.msc", 0), InD(j, "bid", 0.0),
                     InD(j, "ask", 0.0), digits, a, tester);
      int n = j.Count("positions", JSON_T_ARR);
      for(int i = 0; i < n; i++)
      {
         string p = "positions[" + IntegerToString(i) + "]";
         ProtoPosition pos;
         pos.ticket = InL(j, p + ".ticket", 0);
         pos.symbol = InS(j, p + ".symbol", "");
         pos.side = InS(j, p + ".side", "");
         pos.volume = InD(j, p + ".volume", 0.0);
         pos.price_open = InD(j, p + ".price_open", 0.0);
         pos.sl = InD(j, p + ".sl", 0.0);
         pos.tp = InD(j, p + ".tp", 0.0);
         pos.profit = InD(j, p + ".profit", 0.0);
         pos.swap = InD(j, p + ".swap", 0.0);
         pos.time = InL(j, p + ".time", 0);
         pos.comment = InS(j, p + ".comment", "");
         ProtoWritePosition(w, pos, digits);
      }
      ProtoTickBars(w);
      WriteBars(w, j, digits);
      ProtoTickEnd(w);
      return w.Text();
   }
   if(type == "trade")
      return ProtoTradeJson(id, token, ReadTrade(j, "", "side", InL(j, "login", 0)), digits, tester);
   if(type == "calendar")
   {
      ProtoCalendarBegin(w, id, token, InL(j, "login", 0));
      int n = j.Count("events", JSON_T_ARR);
      for(int i = 0; i < n; i++)
      {
         string p = "events[" + IntegerToString(i) + "]";
         ProtoEvent e;
         e.id = InS(j, p + ".id", "");
         e.time_gmt = InL(j, p + ".time_gmt", 0);
         e.currency = InS(j, p + ".currency", "");
         e.importance = InS(j, p + ".importance", "");
         e.name = InS(j, p + ".name", "");
         e.has_actual = j.TypeOf(p + ".actual") == JSON_T_NUM;
         e.actual = InD(j, p + ".actual", 0.0);
         e.has_forecast = j.TypeOf(p + ".forecast") == JSON_T_NUM;
         e.forecast = InD(j, p + ".forecast", 0.0);
         e.has_previous = j.TypeOf(p + ".previous") == JSON_T_NUM;
         e.previous = InD(j, p + ".previous", 0.0);
         ProtoWriteEvent(w, e);
      }
      ProtoCalendarEnd(w);
      return w.Text();
   }
   if(type == "heartbeat")
      return ProtoHeartbeatJson(id, token, InL(j, "login", 0), InS(j, "symbol", ""), InL(j, "time.server", 0),
                                InL(j, "time.gmt", 0), tester);
   return "{\"driver_error\":\"unknown type\"}";
}

// One SyncDeals: HistorySelect(from, now + 1 day), collect, queue each deal's trade message as
// QueueDeal builds it, finish. Input: {"login", "magic", "now", "days", "complete", "cursor",
// "managed": [positions], "history": [{"deal", "order", "position", "symbol", "type":
// "buy"|"sell"|"balance", "entry", "magic", "volume", "price", "profit", "commission", "swap",
// "time", "comment"}]}.
static DealSyncBatch g_batch;

static string Sync(const CJsonFlat &j)
{
   DealSyncCursor c;
   string cursor_text = InS(j, "cursor", "");
   if(cursor_text == "" || !DealSyncParse(cursor_text, c))
      DealSyncReset(c);
   long now = InL(j, "now", 0);
   long magic = InL(j, "magic", 0);
   long from = DealSyncFrom(c, now, (int)InL(j, "days", 7));
   g_managed_positions.clear();
   for(int i = 0; i < j.Count("managed", JSON_T_ARR); i++)
      g_managed_positions.push_back((ulong)InL(j, "managed[" + IntegerToString(i) + "]", 0));
   g_history_rows.clear();
   int n = j.Count("history", JSON_T_ARR);
   for(int i = 0; i < n; i++)
   {
      string p = "history[" + IntegerToString(i) + "]";
      DealSyncRow row;
      row.ticket = (ulong)InL(j, p + ".deal", 0);
      row.time = InL(j, p + ".time", 0);
      string type = InS(j, p + ".type", "");
      row.buy_or_sell = type == "buy" || type == "sell";
      row.magic = InL(j, p + ".magic", 0);
      string entry = InS(j, p + ".entry", "");
      row.opens = entry == "in" || entry == "inout";
      row.position = (ulong)InL(j, p + ".position", 0);
      if(row.time >= from && row.time <= now + 86400)
         g_history_rows.push_back(row);
   }
   DealSyncCollect(g_batch, c, magic);
   CJsonWriter w;
   w.BeginObject();
   w.Key("queued");
   w.BeginArray();
   for(int b = 0; b < g_batch.count; b++)
      for(int i = 0; i < n; i++)
      {
         string p = "history[" + IntegerToString(i) + "]";
         if((ulong)InL(j, p + ".deal", 0) != g_batch.ticket[b])
            continue;
         ProtoTrade t = ReadTrade(j, p + ".", "type", InL(j, "login", 0));
         w.Str(ProtoTradeJson("d-" + IntegerToString(t.deal), "", t, 5, false));  // the exact bytes
         break;
      }
   w.EndArray();
   DealSyncFinish(c, g_batch, now, InB(j, "complete", true));
   w.KStr("cursor", DealSyncSerialize(c));
   w.EndObject();
   return w.Text();
}

static string Canonical(const ProtoReply &r)
{
   CJsonWriter w;
   w.BeginObject();
   string kind = r.kind == PROTO_REPLY_VERDICT ? "verdict"
                 : r.kind == PROTO_REPLY_ACK   ? "ack"
                 : r.kind == PROTO_REPLY_ERROR ? "error"
                                               : "none";
   w.KStr("kind", kind);
   if(r.kind == PROTO_REPLY_NONE)
   {
      w.KStr("problem", r.problem);
      w.EndObject();
      return w.Text();
   }
   w.KStr("id", r.id);
   if(r.kind == PROTO_REPLY_ERROR)
   {
      w.KStr("code", r.error_code);
      w.KStr("message", r.error_message);
   }
   if(r.kind == PROTO_REPLY_VERDICT)
   {
      w.KStr("action", r.action);
      w.KStr("mode", r.mode);
      w.Key("open");
      if(r.has_open)
      {
         w.BeginObject();
         w.KStr("side", r.open_side);
         w.KRaw("volume", Num(r.open_volume));
         w.KRaw("sl", Num(r.open_sl));
         w.KRaw("tp", Num(r.open_tp));
         w.KRaw("risk_pct", Num(r.open_risk_pct));
         w.KStr("signal_id", r.open_signal_id);
         w.EndObject();
      }
      else
         w.Null();
      w.Key("close");
      w.BeginArray();
      for(int i = 0; i < r.close_count; i++)
      {
         w.BeginArray();
         w.Int(r.close_ticket[i]);
         w.Raw(Num(r.close_volume[i]));
         w.EndArray();
      }
      w.EndArray();
      w.Key("manage");
      w.BeginObject();
      for(int k = 0; k < PROTO_M_COUNT; k++)
         w.KRaw(ProtoManageName(k), r.manage_has[k] ? Num(r.manage_val[k]) : "null");
      w.EndObject();
      w.KRaw("leverage_cap", Num(r.leverage_cap));
      w.KInt("valid_until", r.valid_until);
      w.KInt("reason_total", r.reason_total);
      w.Key("reasons");
      w.BeginArray();
      for(int i = 0; i < r.reason_count; i++)
         w.Str(r.reasons[i]);
      w.EndArray();
   }
   w.EndObject();
   return w.Text();
}

int main(int argc, char **argv)
{
   string mode = argc > 1 ? string(argv[1]) : string("");
   if(mode != "encode" && mode != "parse" && mode != "sync")
   {
      std::cerr << "usage: protocol_driver encode|parse|sync\n";
      return 2;
   }
   CJsonFlat *j = new CJsonFlat();
   ProtoReply *r = new ProtoReply();
   std::string line;
   int rc = 0;
   while(std::getline(std::cin, line))
   {
      if(mode == "parse")
      {
         ProtoParseReplyWith(*j, line, *r);
         std::cout << Canonical(*r) << "\n";
         continue;
      }
      if(!j->Parse(line))
      {
         std::cout << "{\"driver_error\":" << JsonQuote(j->m_error) << "}\n";
         rc = 1;
         continue;
      }
      std::cout << (mode == "sync" ? Sync(*j) : Encode(*j)) << "\n";
   }
   delete r;
   delete j;
   return rc;
}
