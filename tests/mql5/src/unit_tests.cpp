// Direct checks of the MQL5 modules' helpers: JSON text, number conversion, parser errors,
// guard state persistence, signal memory, log lines. Exit code = number of failures.
#include <vector>

#include "driver_common.h"

#include "deal_history_table.h"
#include "Sidecar/Guard.mqh"
#include "Sidecar/Log.mqh"
#include "Sidecar/Manager.mqh"
#include "Sidecar/Sizing.mqh"

static int g_fail = 0;
static int g_checks = 0;

#define CHECK(cond)                                                            \
   do                                                                          \
   {                                                                           \
      g_checks++;                                                              \
      if(!(cond))                                                              \
      {                                                                        \
         g_fail++;                                                             \
         std::cout << "FAIL " << __FILE__ << ":" << __LINE__ << " " #cond "\n"; \
      }                                                                        \
   } while(0)

#define CHECK_EQ(a, b)                                                                       \
   do                                                                                        \
   {                                                                                         \
      g_checks++;                                                                            \
      if(!((a) == (b)))                                                                      \
      {                                                                                      \
         g_fail++;                                                                           \
         std::cout << "FAIL " << __FILE__ << ":" << __LINE__ << " " #a " == " #b " got <" << (a) \
                   << ">\n";                                                                 \
      }                                                                                      \
   } while(0)

static void TestJsonText()
{
   CHECK_EQ(JsonQuote("plain"), string("\"plain\""));
   CHECK_EQ(JsonQuote("a\"b\\c"), string("\"a\\\"b\\\\c\""));
   CHECK_EQ(JsonQuote("l1\nl2\r\t"), string("\"l1\\nl2\\r\\t\""));
   CHECK_EQ(JsonQuote(string("x") + (char)1 + "y"), string("\"x\\u0001y\""));
   CHECK_EQ(JsonQuote("caf\xc3\xa9"), string("\"caf\xc3\xa9\""));
   CHECK_EQ(JsonFixed(1.09121, 5), string("1.09121"));
   CHECK_EQ(JsonFixed(150.1, 3), string("150.100"));
   CHECK_EQ(JsonFixed(-0.0, 2), string("0.00"));
   CHECK_EQ(JsonFixed(-0.000001, 2), string("0.00"));
   CHECK_EQ(JsonFixed(std::nan(""), 5), string("null"));
   CHECK_EQ(JsonFixed(INFINITY, 5), string("null"));
   CHECK_EQ(JsonMoney(10000.0), string("10000.00"));
   CHECK_EQ(JsonMoney(-0.35), string("-0.35"));
   CHECK_EQ(JsonMoney(12.345678), string("12.345678"));
   CHECK_EQ(JsonMoney(0.1 + 0.2), string("0.30"));
   CHECK_EQ(JsonVolume(0.1), string("0.10"));
   CHECK_EQ(JsonDecimal(0.00001, 1, 10), string("0.00001"));
   CHECK_EQ(JsonDecimal(100000.0, 1, 8), string("100000.0"));
   CHECK_EQ(JsonDecimal(5.0, 0, 6), string("5"));
   CHECK_EQ(JsonExact(0.00001), string("0.00001"));
   CHECK_EQ(JsonExact(100000.0), string("100000.0"));
   CHECK_EQ(JsonExact(0.6451612903225806), string("0.6451612903225806"));
   const double exact_samples[] = {0.1, 1.0 / 3.0, 0.6451612903225806, 1e-12, 123456789.123, 1e22, 5e-324, 2650.25};
   for(double x : exact_samples)
      CHECK_EQ(std::strtod(JsonExact(x).c_str(), nullptr), x);

   CJsonWriter w;
   w.BeginObject();
   w.KInt("a", 1);
   w.Key("b");
   w.BeginArray();
   w.Int(1);
   w.BeginArray();
   w.EndArray();
   w.BeginObject();
   w.EndObject();
   w.EndArray();
   w.KStr("c", "x");
   w.Key("d");
   w.Null();
   w.EndObject();
   CHECK_EQ(w.Text(), string("{\"a\":1,\"b\":[1,[],{}],\"c\":\"x\",\"d\":null}"));
}

static double Conv(const string &t)
{
   bool ok = false;
   double v = JsonNumberToDouble(t, ok);
   return ok ? v : -12345.0;
}

static void TestNumbers()
{
   const char *samples[] = {"0", "-0", "1", "-1", "1.5", "0.1", "0.30000000000000004", "1e-05", "5E-5", "1.2345678901234567e-05",
                            "2.5e+3", "123456789012345678", "1734478806", "1.7976931348623157e308", "5e-324", "0.0000001",
                            "9007199254740993", "1.08628", "2650.00", "-42.125e1"};
   for(const char *s : samples)
      CHECK_EQ(Conv(s), std::strtod(s, nullptr));
   bool ok = true;
   JsonNumberToDouble("1e999", ok);
   CHECK(!ok);

   CJsonFlat j;
   CHECK(j.Parse("{\"i\":1734478806,\"f\":1734478806.0,\"x\":1.5,\"big\":12345678901234567890,\"neg\":-7}"));
   long v = 0;
   CHECK(j.GetLong("i", v) && v == 1734478806L);
   CHECK(j.GetLong("f", v) && v == 1734478806L);
   CHECK(!j.GetLong("x", v));
   CHECK(!j.GetLong("big", v));
   CHECK(j.GetLong("neg", v) && v == -7);
   CHECK(j.Parse("{\"max\":9223372036854775807,\"over\":9223372036854775808,\"min\":-9223372036854775808}"));
   CHECK(j.GetLong("max", v) && v == LONG_MAX);
   CHECK(!j.GetLong("over", v));
   CHECK(j.GetLong("min", v) && v == LONG_MIN);
}

static void TestParser()
{
   CJsonFlat j;
   CHECK(j.Parse(" {\"a\" : [1, {\"b\": \"x\\u00e9\\ud83d\\ude00\\n\"}], \"c\": null, \"d\": true} "));
   CHECK_EQ(j.Count("a", JSON_T_ARR), 2);
   CHECK_EQ(j.TypeOf("a[1]"), JSON_T_OBJ);
   string s;
   CHECK(j.GetString("a[1].b", s));
   CHECK_EQ(s, string("x\xc3\xa9\xf0\x9f\x98\x80\n"));
   CHECK(j.IsNull("c"));
   CHECK(j.IsNull("missing"));
   bool b = false;
   CHECK(j.GetBool("d", b) && b);
   // a trailing NUL from StringToCharArray is accepted
   CHECK(j.Parse(string("{\"a\":1}") + '\0'));
   // keys with path characters are parsed but not addressable
   CHECK(j.Parse("{\"a.b\":1,\"a\":{\"b\":2}}"));
   double d = 0;
   CHECK(j.GetDouble("a.b", d) && d == 2.0);
   CHECK(j.Parse("{\"a\":{\"b\":2},\"a.b\":1}"));
   CHECK(j.GetDouble("a.b", d) && d == 2.0);

   const char *bad[] = {"", "{", "{\"a\":}", "{\"a\":1,}", "[1,]", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
                        "{\"a\":+1}", "{\"a\":tru}", "{\"a\":\"x}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud83d\"}",
                        "{\"a\":\"\\ude00\"}", "{a:1}", "{\"a\":1} x", "{\"a\":1}{}", "{\"a\":NaN}",
                        "{\"a\":Infinity}", "{\"a\":\"tab\there\"}", "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]"};
   for(const char *t : bad)
   {
      bool parsed = j.Parse(t);
      CHECK(!parsed);
      if(parsed)
         std::cout << "  accepted: " << t << "\n";
   }
   // too many entries
   string many = "[";
   for(int i = 0; i < JSON_MAX_ENTRIES + 5; i++)
      many += (i ? ",1" : "1");
   many += "]";
   CHECK(!j.Parse(many));
}

static void TestReplies()
{
   ProtoReply r;
   CHECK(ProtoParseReply("{\"v\":1,\"type\":\"ack\",\"id\":\"d-7\",\"ok\":true,\"extra\":{\"x\":[1,2]}}", r));
   CHECK_EQ(r.kind, PROTO_REPLY_ACK);
   CHECK_EQ(r.id, string("d-7"));
   CHECK(ProtoParseReply("{\"v\":1,\"type\":\"error\",\"id\":\"t-43\",\"ok\":false,\"error\":{\"code\":\"UNKNOWN_SYMBOL\",\"message\":\"say hello\"}}", r));
   CHECK_EQ(r.kind, PROTO_REPLY_ERROR);
   CHECK_EQ(r.error_code, string("UNKNOWN_SYMBOL"));
   CHECK(ProtoParseReply("{\"v\":1,\"type\":\"error\",\"id\":null,\"ok\":false,\"error\":{\"code\":\"BAD_REQUEST\",\"message\":\"x\"}}", r));
   CHECK_EQ(r.id, string(""));
   const string good = "{\"v\":1,\"type\":\"verdict\",\"id\":\"t-42\",\"ok\":true,\"action\":\"open\",\"mode\":\"active\","
                       "\"open\":{\"side\":\"buy\",\"volume\":0.2,\"sl\":1.08628,\"tp\":1.10128,\"risk_pct\":1.0,\"signal_id\":\"9f2c\"},"
                       "\"close\":[{\"ticket\":501,\"volume\":0.1}],\"manage\":{\"breakeven_r\":1.0,\"partial_r\":1.0,"
                       "\"partial_fraction\":0.5,\"trail_atr\":2.0,\"trail_distance\":0.0021},\"leverage_cap\":300,"
                       "\"valid_until\":1734478806,\"reasons\":[\"SIGNAL_RESONANCE side=buy\",\"SIZE_RISK risk_pct=1.0\"]}";
   CHECK(ProtoParseReply(good, r));
   CHECK_EQ(r.kind, PROTO_REPLY_VERDICT);
   CHECK_EQ(r.open_side, string("buy"));
   CHECK_EQ(r.open_sl, 1.08628);
   CHECK_EQ(r.close_count, 1);
   CHECK_EQ(r.close_ticket[0], 501L);
   CHECK_EQ(r.manage_val[PROTO_M_TRAIL_DISTANCE], 0.0021);
   CHECK_EQ(r.leverage_cap, 300.0);
   CHECK_EQ(r.valid_until, 1734478806L);
   CHECK_EQ(r.reason_count, 2);
   // each required field broken in turn -> no verdict
   struct Broken
   {
      const char *from;
      const char *to;
   };
   const Broken broken[] = {{"\"v\":1", "\"v\":2"},
                            {"\"ok\":true", "\"ok\":false"},
                            {"\"action\":\"open\"", "\"action\":\"buy\""},
                            {"\"mode\":\"active\"", "\"mode\":\"on\""},
                            {"\"valid_until\":1734478806", "\"valid_until\":\"soon\""},
                            {"\"valid_until\":1734478806", "\"valid_until\":1.5"},
                            {"\"side\":\"buy\"", "\"side\":\"long\""},
                            {"\"volume\":0.2", "\"volume\":-0.2"},
                            {"\"sl\":1.08628", "\"sl\":null"},
                            {"\"tp\":1.10128", "\"tp\":0"},
                            {"\"risk_pct\":1.0,", ""},
                            {"\"ticket\":501,\"volume\":0.1", "\"ticket\":501"},
                            {"\"signal_id\":\"9f2c\"", "\"signal_id\":\"\""},
                            {"\"ticket\":501", "\"ticket\":\"501\""},
                            {"\"trail_atr\":2.0", "\"trail_atr\":\"2\""},
                            {"\"leverage_cap\":300", "\"leverage_cap\":0"},
                            {"\"SIZE_RISK risk_pct=1.0\"", "7"},
                            {"\"id\":\"t-42\"", "\"id\":42"},
                            {"\"type\":\"verdict\"", "\"type\":\"verdikt\""}};
   for(const Broken &b : broken)
   {
      string t = good;
      size_t p = t.find(b.from);
      CHECK(p != std::string::npos);
      t.replace(p, std::strlen(b.from), b.to);
      bool ok = ProtoParseReply(t, r);
      CHECK(!ok);
      CHECK_EQ(r.kind, PROTO_REPLY_NONE);
      CHECK(r.problem != "");
      if(ok)
         std::cout << "  accepted broken: " << b.to << "\n";
   }
   // open missing while action is open; hold without open is fine
   CHECK(!ProtoParseReply("{\"v\":1,\"type\":\"verdict\",\"id\":\"t\",\"ok\":true,\"action\":\"open\",\"mode\":\"active\",\"open\":null,\"valid_until\":1}", r));
   const string hold = "{\"v\":1,\"type\":\"verdict\",\"id\":\"t\",\"action\":\"hold\",\"mode\":\"halted\",\"open\":null,"
                       "\"manage\":{\"breakeven_r\":1,\"partial_r\":1,\"partial_fraction\":0.5,\"trail_atr\":2,\"trail_distance\":0,"
                       "\"breakeven_buffer\":0.0001},\"leverage_cap\":100,\"valid_until\":1}";
   CHECK(ProtoParseReply(hold, r));
   CHECK(!r.has_open && r.close_count == 0 && r.manage_has[PROTO_M_BREAKEVEN_BUFFER]);
   CHECK_EQ(r.manage_val[PROTO_M_BREAKEVEN_BUFFER], 0.0001);
   // manage and leverage_cap are required
   string t2 = hold;
   t2.replace(t2.find("\"leverage_cap\":100,"), std::strlen("\"leverage_cap\":100,"), "");
   CHECK(!ProtoParseReply(t2, r));
   t2 = hold;
   t2.replace(t2.find("\"trail_distance\":0,"), std::strlen("\"trail_distance\":0,"), "");
   CHECK(!ProtoParseReply(t2, r));
   CHECK(!ProtoParseReply("[1]", r));
   CHECK(!ProtoParseReply("{\"v\":1,\"type\":\"ack\",\"id\":\"x\",\"ok\":false}", r));
   CHECK(ProtoParseReply("{\"v\":1,\"type\":\"ack\",\"id\":\"x\",\"duplicate\":true}", r));
   CHECK(!ProtoParseReply("{\"v\":1,\"type\":\"error\",\"id\":\"x\",\"error\":{\"code\":\"X\"}}", r));
}

static void TestGuardState()
{
   GuardLimits l;
   GuardLimitsDefaults(l);
   CHECK_EQ(GuardLimitsErrors(l), string(""));
   GuardLimits bad = l;
   bad.max_risk_pct = 0.0;
   bad.max_positions = 0;
   CHECK(GuardLimitsErrors(bad).find("max_risk_pct") != std::string::npos);
   CHECK(GuardLimitsErrors(bad).find("max_positions") != std::string::npos);
   // the hard ceilings cannot be loosened by an input
   GuardLimits edge = l;
   edge.max_risk_pct = 2.0;
   edge.max_leverage = 500.0;
   edge.max_positions = 5;
   CHECK_EQ(GuardLimitsErrors(edge), string(""));
   GuardLimits loose = l;
   loose.max_risk_pct = 2.5;
   CHECK(GuardLimitsErrors(loose).find("max_risk_pct") != std::string::npos);
   loose = l;
   loose.max_leverage = 3000.0;
   CHECK(GuardLimitsErrors(loose).find("max_leverage") != std::string::npos);
   loose = l;
   loose.max_positions = 6;
   CHECK(GuardLimitsErrors(loose).find("max_positions") != std::string::npos);
   loose = l;
   loose.day_offset_hours = 24.0;
   CHECK(GuardLimitsErrors(loose).find("day_offset_hours") != std::string::npos);
   loose.day_offset_hours = 0.1234;
   CHECK(GuardLimitsErrors(loose).find("whole number of minutes") != std::string::npos);
   loose.day_offset_hours = -23.0;
   CHECK_EQ(GuardLimitsErrors(loose), string(""));
   loose.day_offset_hours = 5.5;
   CHECK_EQ(GuardLimitsErrors(loose), string(""));

   GuardState s;
   GuardStateReset(s);
   CHECK(GuardOnAccount(s, l, 1734486000L, 10000.0));
   GuardRememberSignal(s, l, "sig-a", 1734486000L);
   GuardRememberSignal(s, l, "sig-b", 1734486100L);
   string text = GuardStateSerialize(s);
   GuardState t;
   CHECK(GuardStateParse(text, t));
   CHECK_EQ(t.day_start, 1734480000L);
   CHECK_EQ(t.day_start_equity, 10000.0);
   CHECK_EQ(t.hwm, 10000.0);
   CHECK_EQ(t.sig_count, 2);
   CHECK(GuardIsDuplicate(t, l, "sig-a", 1734486300L));
   CHECK(!GuardIsDuplicate(t, l, "sig-a", 1734486301L));
   CHECK(!GuardStateParse("garbage", t));
   CHECK(!GuardStateParse("v=2\nhwm=1\n", t));
   CHECK(GuardStateParse("v=1\r\nday_start=5\r\n", t) && t.day_start == 5);
   // old signals expire, the memory never exceeds its size
   for(int i = 0; i < 200; i++)
      GuardRememberSignal(s, l, "s" + IntegerToString(i), 1734490000L + i);
   CHECK(s.sig_count <= GUARD_MAX_SIGNALS);
   CHECK(GuardIsDuplicate(s, l, "s199", 1734490199L));
   GuardRememberSignal(s, l, "late", 1734499999L);
   CHECK_EQ(s.sig_count, 1);
}

static void TestLogAndSizing()
{
   CHECK_EQ(LogLine(LOG_RISK, "DAILY_LOSS", LogKv("loss_pct", "3.10")), string("SC RISK DAILY_LOSS loss_pct=3.10"));
   CHECK_EQ(LogKv("event", "Non Farm \"NFP\""), string("event=\"Non Farm \\\"NFP\\\"\""));
   CHECK_EQ(LogKv("x", ""), string("x=\"\""));
   CHECK_EQ(LogKv("x", "a\nb"), string("x=\"a b\""));
   LogThrottle th;
   LogThrottleReset(th);
   CHECK(LogThrottleAllow(th, "a", 100, 60));
   CHECK(!LogThrottleAllow(th, "a", 120, 60));
   CHECK(LogThrottleAllow(th, "b", 121, 60));
   CHECK(LogThrottleAllow(th, "a", 122, 60));
   CHECK(LogThrottleAllow(th, "a", 182, 60));

   CHECK_EQ(SizingFloorToStep(0.29, 0.01), 0.29);
   CHECK_EQ(SizingFloorToStep(0.299999, 0.01), 0.29);
   CHECK_EQ(SizingFloorToStep(1.0, 0.1), 1.0);
   CHECK_EQ(SizingFloorToStep(7.0, 1.0), 7.0);
   CHECK_EQ(SizingFloorToStep(-1.0, 0.01), 0.0);
   CHECK_EQ(SizingFloorToStep(1.0, 0.0), 0.0);
   CHECK_EQ(SizingStepDigits(0.01), 2);
   CHECK_EQ(SizingStepDigits(0.001), 3);
   CHECK_EQ(SizingStepDigits(1.0), 0);
   CHECK_EQ(ManagerStopToTick(1.234567, 0.00001, 5, MANAGER_SIDE_BUY), 1.23456);
   CHECK_EQ(ManagerStopToTick(1.234561, 0.00001, 5, MANAGER_SIDE_SELL), 1.23457);
   CHECK_EQ(ManagerStopToTick(2658.25, 0.25, 2, MANAGER_SIDE_BUY), 2658.25);

   // entry stops/targets on the tick grid, toward the entry (a buy's stop up, a sell's down):
   // digits alone leave 42123.37 on a 0.25-tick index, which the server rejects
   CHECK_EQ(SizingEntryPriceToTick(42123.37, 0.25, 2, true), 42123.5);
   CHECK_EQ(SizingEntryPriceToTick(42123.37, 0.25, 2, false), 42123.25);
   CHECK_EQ(SizingEntryPriceToTick(42123.25, 0.25, 2, true), 42123.25);
   CHECK_EQ(SizingEntryPriceToTick(42123.25, 0.25, 2, false), 42123.25);
   CHECK_EQ(SizingEntryPriceToTick(1.08628, 0.00001, 5, true), 1.08628);
   CHECK_EQ(SizingEntryPriceToTick(1.08628, 0.00001, 5, false), 1.08628);
   CHECK_EQ(SizingEntryPriceToTick(1.086284, 0.00001, 5, true), 1.08629);
   CHECK_EQ(SizingEntryPriceToTick(1.086286, 0.00001, 5, false), 1.08628);
   CHECK_EQ(SizingEntryPriceToTick(1.086284, 0.0, 5, true), 1.08628);
   CHECK_EQ(SizingEntryPriceToTick(0.0, 0.25, 2, true), 0.0);
}

static DealSyncBatch g_batch;

// One read as SyncDeals runs it: the window from DealSyncFrom (7 days on a first read) to a day
// past the read, collect, queue (here: list the tickets), finish.
static string ReadOnce(DealSyncCursor &c, const DealSyncRow *rows, int n, long magic, long read_end,
                       bool complete)
{
   long from = DealSyncFrom(c, read_end, 7);
   g_history_rows.clear();
   for(int i = 0; i < n; i++)
      if(rows[i].time >= from && rows[i].time <= read_end + 86400)
         g_history_rows.push_back(rows[i]);
   DealSyncCollect(g_batch, c, magic);
   string queued = "";
   for(int i = 0; i < g_batch.count; i++)
      queued += (queued == "" ? "" : ",") + IntegerToString((long)g_batch.ticket[i]);
   DealSyncFinish(c, g_batch, read_end, complete);
   return queued;
}

static void TestDealSync()
{
   const long magic = 20251218;
   const long now = 1767225600;  // 2026-01-01 00:00 server time
   const long day = 86400;
   DealSyncCursor c;
   DealSyncReset(c);

   // the window: InpDealSyncDays back (at least one) before the first complete read, then a day
   // behind the watermark; a watermark in the future counts as now
   CHECK_EQ(DealSyncFrom(c, now, 7), now - 7 * day);
   CHECK_EQ(DealSyncFrom(c, now, 0), now - day);
   CHECK_EQ(DealSyncFrom(c, now, 100000), now - 365L * day);
   c.synced_to = now - 3600;
   CHECK_EQ(DealSyncFrom(c, now, 7), now - 3600 - day);
   c.synced_to = now + 50 * day;
   CHECK_EQ(DealSyncFrom(c, now, 7), now - day);

   // the ring remembers queued tickets, each once, and forgets the oldest first
   DealSyncReset(c);
   DealSyncNote(c, 500);
   DealSyncNote(c, 500);
   CHECK(DealSyncKnown(c, 500) && !DealSyncKnown(c, 501));
   CHECK_EQ(c.count, 1);
   for(int i = 1; i <= DEAL_SYNC_RECENT; i++)
      DealSyncNote(c, (ulong)(1000 + i));
   CHECK(!DealSyncKnown(c, 500));
   CHECK(DealSyncKnown(c, 1001) && DealSyncKnown(c, (ulong)(1000 + DEAL_SYNC_RECENT)));
   CHECK_EQ(c.count, DEAL_SYNC_RECENT);

   // whose deal: the magic, a position opened with the magic in the window, or one still managed
   CHECK(DealSyncIsOurs(magic, magic, false, false));
   CHECK(DealSyncIsOurs(0, magic, true, false));
   CHECK(DealSyncIsOurs(0, magic, false, true));
   CHECK(!DealSyncIsOurs(0, magic, false, false));
   CHECK(!DealSyncIsOurs(magic + 1, magic, false, false));

   // the terminal was closed while the stop filled (deal 102, magic 0, position 7): the restart's
   // reads queue the open again (the sidecar drops it as a duplicate) and the close, in the
   // order they happened, whatever the history's order; another EA's deals, a balance operation
   // and a manual trade stay out
   DealSyncReset(c);
   c.synced_to = now - 3 * day;  // the last complete read, three days before the restart
   CHECK(DealSyncParse(DealSyncSerialize(c), c));  // the restart: the file, no ring
   const DealSyncRow closed[] = {
      {102, now - 100, true, 0, false, 7},           // the stop fill, a server order
      {101, now - 3 * day - 50, true, magic, true, 7},  // our open, just before the watermark
      {103, now - 90, false, 0, false, 0},           // a balance operation
      {104, now - 80, true, magic + 1, true, 8},     // another EA's open
      {105, now - 70, true, 0, true, 9},             // a manual open
      {106, now - 60, true, 0, false, 9},            // its manual close
      {107, now - 100, true, magic, true, 10},       // our open in the same second as 102
   };
   CHECK_EQ(ReadOnce(c, closed, 7, magic, now, false), string("101,102,107"));
   // connected for less than DEAL_SYNC_SETTLE_SEC: the history may still be downloading, so the
   // watermark stays; the settle read finds nothing new and moves it
   CHECK_EQ(c.synced_to, now - 3 * day);
   CHECK_EQ(ReadOnce(c, closed, 7, magic, now + 120, true), string(""));
   CHECK_EQ(c.synced_to, now + 120);

   // a live deal never moves the watermark: a fill the live path missed, older than the newest
   // live deal by more than the margin, is still read
   DealSyncReset(c);
   c.synced_to = now - 2 * day;
   DealSyncNote(c, 209);  // seen by OnTradeTransaction after the restart
   const DealSyncRow missed[] = {
      {208, now - 2 * day + 3600, true, magic, false, 11},  // the stop, while the terminal was off
      {209, now + 20, true, magic, true, 12},
   };
   CHECK_EQ(ReadOnce(c, missed, 2, magic, now + 30, true), string("208"));
   // and the margin is what reaches it: a deal older than a day behind the watermark is not read
   DealSyncReset(c);
   c.synced_to = now;
   const DealSyncRow too_old[] = {{210, now - day - 1, true, magic, false, 13}, {211, now - day, true, magic, false, 14}};
   CHECK_EQ(ReadOnce(c, too_old, 2, magic, now + 10, true), string("211"));

   // a close whose opening deal is before the window counts while the position is managed
   DealSyncReset(c);
   g_managed_positions = {3};
   const DealSyncRow old_position[] = {{110, now + 30, true, 0, false, 3}, {111, now + 40, true, 0, false, 4}};
   CHECK_EQ(ReadOnce(c, old_position, 2, magic, now + 50, true), string("110"));
   g_managed_positions.clear();

   // the batch: (time, ticket) order; full -> the newest wait for the next read
   DealSyncBatchReset(g_batch);
   CHECK(DealSyncBatchAdd(g_batch, 30, 300));
   CHECK(DealSyncBatchAdd(g_batch, 10, 100));
   CHECK(DealSyncBatchAdd(g_batch, 21, 200));
   CHECK(DealSyncBatchAdd(g_batch, 20, 200));
   CHECK(!DealSyncBatchAdd(g_batch, 10, 100));
   CHECK_EQ(g_batch.count, 4);
   CHECK(g_batch.ticket[0] == 10 && g_batch.ticket[1] == 20 && g_batch.ticket[2] == 21 && g_batch.ticket[3] == 30);
   DealSyncBatchReset(g_batch);
   for(int i = 0; i < DEAL_SYNC_BATCH; i++)
      DealSyncBatchAdd(g_batch, (ulong)(1000 + i), 1000 + i);
   CHECK(!DealSyncBatchAdd(g_batch, 5000, 5000));   // newer than all: left for the next read
   CHECK(DealSyncBatchAdd(g_batch, 999, 999));      // older: in, the newest leaves
   CHECK_EQ(g_batch.count, DEAL_SYNC_BATCH);
   CHECK_EQ(g_batch.dropped, 2);
   CHECK(g_batch.ticket[0] == 999 && g_batch.ticket[DEAL_SYNC_BATCH - 1] == (ulong)(1000 + DEAL_SYNC_BATCH - 2));

   // a first read over 2,500 deals of this EA in one day: three reads queue them all, each
   // once, in order, and the watermark follows the newest deal queued until the last read
   static DealSyncRow busy[2500];
   for(int i = 0; i < 2500; i++)
      busy[i] = {(ulong)(5000 + i), now - day + 10 * i, true, magic, i % 2 == 0, (ulong)(1 + i / 2)};
   DealSyncReset(c);
   string all = "";
   for(int read = 0; read < 3; read++)
   {
      string got = ReadOnce(c, busy, 2500, magic, now, true);
      all += (all == "" || got == "" ? "" : ",") + got;
      if(read < 2)
         CHECK_EQ(c.synced_to, now - day + 10 * (1000 * (read + 1) - 1));
   }
   CHECK_EQ(c.synced_to, now);
   string want = "";
   for(int i = 0; i < 2500; i++)
      want += (i ? "," : "") + IntegerToString(5000 + i);
   CHECK(all == want);
   CHECK_EQ(ReadOnce(c, busy, 2500, magic, now + 60, true), string(""));

   // when the EA reads, and when it may enter: a restart after a closure
   DealSyncClock k;
   DealSyncClockReset(k);
   CHECK(!DealSyncReadDue(k, now, 10, 0));  // not connected: the history may be behind
   CHECK_EQ(DealSyncEntryBlock(k, 0), string("HISTORY_NOT_READ"));
   DealSyncClockConnection(k, true, now);
   CHECK(DealSyncReadDue(k, now, 10, 0));   // the first read, at once
   CHECK(!DealSyncComplete(k, now + 119));
   DealSyncClockRead(k, now + 1, DealSyncComplete(k, now + 1), false);
   CHECK_EQ(DealSyncEntryBlock(k, 3), string("DEALS_QUEUED"));  // it found the missed stop
   CHECK_EQ(DealSyncEntryBlock(k, 0), string("HISTORY_NOT_READ"));  // flushed, but incomplete
   CHECK(!DealSyncReadDue(k, now + 119, 10, 0));
   CHECK(DealSyncReadDue(k, now + 120, 10, 0));  // the settle read
   DealSyncClockRead(k, now + 120, DealSyncComplete(k, now + 120), false);
   CHECK_EQ(DealSyncEntryBlock(k, 0), string(""));
   CHECK(!DealSyncReadDue(k, now + 120 + 599, 10, 0));
   CHECK(DealSyncReadDue(k, now + 120 + 600, 10, 0));  // every InpDealSyncMin
   // an entry reads first when the last read is a few seconds old
   CHECK(!DealSyncReadBeforeEntry(k, now + 124));
   CHECK(DealSyncReadBeforeEntry(k, now + 125));
   // a cut read: entries wait, and the next read comes as soon as the queue drained
   DealSyncClockRead(k, now + 200, true, true);
   CHECK_EQ(DealSyncEntryBlock(k, 0), string("HISTORY_BACKLOG"));
   CHECK(!DealSyncReadDue(k, now + 201, 10, 1000));
   CHECK(DealSyncReadDue(k, now + 201, 10, 0));
   DealSyncClockRead(k, now + 202, true, false);
   CHECK_EQ(DealSyncEntryBlock(k, 0), string(""));
   // a disconnect and reconnect start over: the terminal may have missed anything meanwhile
   DealSyncClockConnection(k, false, now + 300);
   CHECK(!DealSyncReadDue(k, now + 301, 10, 0) && !DealSyncReadBeforeEntry(k, now + 301));
   DealSyncClockConnection(k, true, now + 400);
   CHECK_EQ(DealSyncEntryBlock(k, 0), string("HISTORY_NOT_READ"));
   CHECK(DealSyncReadDue(k, now + 400, 10, 0));
   DealSyncClockConnection(k, true, now + 401);  // still the same connection
   CHECK_EQ(k.connected_since, now + 400);

   // positions opened with the magic: each once; beyond the cap they are counted, not kept
   DealSyncBatchReset(g_batch);
   DealSyncMarkOpened(g_batch, 0);
   DealSyncMarkOpened(g_batch, 7);
   DealSyncMarkOpened(g_batch, 7);
   CHECK_EQ(g_batch.opened_count, 1);
   CHECK(DealSyncOpened(g_batch, 7) && !DealSyncOpened(g_batch, 0) && !DealSyncOpened(g_batch, 8));
   for(int i = 0; i < DEAL_SYNC_OPENED; i++)
      DealSyncMarkOpened(g_batch, (ulong)(100 + i));
   CHECK_EQ(g_batch.opened_count, DEAL_SYNC_OPENED);
   CHECK_EQ(g_batch.opened_dropped, 1);

   // an incomplete read or an unsaved queue keeps the watermark; a cut batch moves it only to
   // its newest deal
   DealSyncReset(c);
   c.synced_to = now - 100;
   DealSyncBatchReset(g_batch);
   DealSyncFinish(c, g_batch, now, false);
   CHECK_EQ(c.synced_to, now - 100);
   DealSyncBatchAdd(g_batch, 77, now - 1000);   // a cut read of older deals does not move it back
   g_batch.dropped = 1;
   DealSyncFinish(c, g_batch, now, true);
   CHECK_EQ(c.synced_to, now - 100);
   DealSyncBatchReset(g_batch);
   c.synced_to = now + 50 * day;                 // a watermark ahead of the server's clock comes back
   DealSyncFinish(c, g_batch, now, true);
   CHECK_EQ(c.synced_to, now);

   // a damaged message of a queued deal is dropped and forgotten: the next read queues it again
   DealSyncReset(c);
   c.synced_to = now;
   const DealSyncRow again[] = {{300, now - 10, true, magic, true, 30}};
   CHECK_EQ(ReadOnce(c, again, 1, magic, now, true), string("300"));
   CHECK_EQ(ReadOnce(c, again, 1, magic, now + 1, true), string(""));
   DealSyncForget(c, 300);
   CHECK_EQ(ReadOnce(c, again, 1, magic, now + 2, true), string("300"));
   // a netting reversal (entry "inout") opens a position of the EA too
   DealSyncReset(c);
   const DealSyncRow reversal[] = {{310, now - 20, true, magic, true, 31}, {311, now - 10, true, 0, false, 31}};
   CHECK_EQ(ReadOnce(c, reversal, 2, magic, now, true), string("310,311"));

   // queued trade messages are stored without a token and get the current one when sent: a
   // token changed in between must not leave them refused (UNAUTHORIZED) and entries closed
   ProtoTrade t;
   t.login = 5550001;
   t.deal = 32;
   t.order = 1032;
   t.position = 3;
   t.symbol = "EURUSD";
   t.side = "sell";
   t.entry = "out";
   t.volume = 0.1;
   t.price = 1.1;
   t.profit = -9.0;
   t.commission = 0.0;
   t.swap = 0.0;
   t.time = now;
   t.comment = "";
   const string bare = ProtoTradeJson("d-32", "", t, 5, false);
   const string with_old = ProtoTradeJson("d-32", "old", t, 5, false);
   CHECK(StringFind(bare, "\"token\"") < 0);
   CHECK_EQ(ProtoTradeWithToken(bare, "s3cret"), ProtoTradeJson("d-32", "s3cret", t, 5, false));
   CHECK_EQ(ProtoTradeWithToken(with_old, "new"), ProtoTradeJson("d-32", "new", t, 5, false));
   CHECK_EQ(ProtoTradeWithToken(with_old, ""), bare);
   CHECK_EQ(ProtoTradeWithToken(bare, "a\"b,\"login\":"), ProtoTradeJson("d-32", "a\"b,\"login\":", t, 5, false));
   CHECK_EQ(ProtoTradeWithToken("{\"v\":1}", "x"), string("{\"v\":1}"));

   // the cursor file
   DealSyncReset(c);
   c.synced_to = 1767225600;
   CHECK_EQ(DealSyncSerialize(c), string("v=1\nsynced_to=1767225600\n"));
   DealSyncCursor d;
   CHECK(DealSyncParse("v=1\r\nsynced_to=1767225600\r\n", d));
   CHECK_EQ(d.synced_to, 1767225600L);
   CHECK_EQ(d.count, 0);
   const string bad[] = {"", "v=2\nsynced_to=5\n", "v=1\n", "synced_to=5\n", "v=1\nsynced_to=abc\n",
                         "v=1\nsynced_to=-5\n", "v=1\nsynced_to=\n", "v=1\nsynced_to=5\nextra=1\n",
                         "v=1\nsynced_to=99999999999999999999\n", "v=1\nsynced_to=17\n"};
   for(const string &text : bad)
   {
      d.synced_to = 77;
      CHECK(!DealSyncParse(text, d));
      CHECK_EQ(d.synced_to, 0L);
   }
}

int main()
{
   TestJsonText();
   TestNumbers();
   TestParser();
   TestReplies();
   TestGuardState();
   TestLogAndSizing();
   TestDealSync();
   std::cout << g_checks << " checks, " << g_fail << " failed\n";
   if(g_fail == 0)
      std::cout << "all checks passed\n";
   return g_fail == 0 ? 0 : 1;
}
