//+------------------------------------------------------------------+
//| Protocol.mqh -- wire contract v1 (see DESIGN.md, shared_schema/). |
//| Builds hello/tick/trade/calendar/heartbeat JSON and parses        |
//| verdict/ack/error replies with a small tokenizer.                 |
//| Pure logic in the MQL5/C++ common subset (tested with g++).       |
//| Numbers: prices with the symbol's digits, money and volumes with  |
//| up to 8 decimals (at least 2), non-finite values as null.         |
//| Replies: unknown fields ignored; a missing or malformed required  |
//| field makes the whole reply "no verdict" (kind NONE + problem).   |
//+------------------------------------------------------------------+
#ifndef SIDECAR_PROTOCOL_MQH
#define SIDECAR_PROTOCOL_MQH

#include "Strings.mqh"

#define PROTO_VERSION 1

//==================================================================
// JSON text helpers
//==================================================================

string JsonHex4(const int v)
  {
   string hex = "0123456789abcdef";
   string out = "";
   for(int shift = 12; shift >= 0; shift -= 4)
      out += ScSubstr(hex, (v >> shift) & 0xF, 1);
   return out;
  }

// A JSON string literal. Quotes, backslashes and control characters are escaped; everything
// else is copied (MQL5 converts to UTF-8 when the message is sent).
string JsonQuote(const string s)
  {
   string out = "\"";
   int n = StringLen(s);
   int run = 0;
   for(int i = 0; i < n; i++)
     {
      ushort c = StringGetCharacter(s, i);
      string esc = "";
      if(c == '"')
         esc = "\\\"";
      else
         if(c == '\\')
            esc = "\\\\";
         else
            if(c == '\n')
               esc = "\\n";
            else
               if(c == '\r')
                  esc = "\\r";
               else
                  if(c == '\t')
                     esc = "\\t";
                  else
                     if(c < 0x20 || c == 0x7F)
                        esc = "\\u" + JsonHex4(c);
      if(esc == "")
         continue;
      if(i > run)
         out += ScSubstr(s, run, i - run);
      out += esc;
      run = i + 1;
     }
   if(n > run)
      out += ScSubstr(s, run, n - run);
   return out + "\"";
  }

// Fixed notation with exactly `digits` decimals ("null" when not finite).
string JsonFixed(const double x, const int digits)
  {
   if(!MathIsValidNumber(x))
      return "null";
   int d = digits < 0 ? 0 : (digits > 16 ? 16 : digits);
   string s = DoubleToString(x, d);
   if(s == "-" + DoubleToString(0.0, d))
      s = DoubleToString(0.0, d);
   return s;
  }

// Up to max_dec decimals, trailing zeros trimmed down to min_dec ("null" when not finite).
string JsonDecimal(const double x, const int min_dec, const int max_dec)
  {
   string s = JsonFixed(x, max_dec);
   if(s == "null")
      return s;
   int dot = StringFind(s, ".");
   if(dot < 0)
      return s;
   int keep = StringLen(s);
   while(keep > dot + 1 + min_dec && StringGetCharacter(s, keep - 1) == '0')
      keep--;
   if(keep == dot + 1)
      keep--;
   return ScSubstr(s, 0, keep);
  }

// The shortest fixed notation (1..16 decimals) that reads back as the same double; scientific
// notation with 17 significant digits when none does (tiny or huge values). "null" when not finite.
string JsonExact(const double x)
  {
   if(!MathIsValidNumber(x))
      return "null";
   for(int d = 1; d <= 16; d++)
     {
      string s = JsonDecimal(x, 1, d);
      if(StringToDouble(s) == x)
         return s;
     }
   return DoubleToString(x, -16);
  }

string JsonMoney(const double x) { return JsonDecimal(x, 2, 8); }
string JsonVolume(const double x) { return JsonDecimal(x, 2, 8); }
string JsonPrice(const double x, const int digits) { return JsonFixed(x, digits); }

//==================================================================
// Writer
//==================================================================

#define JSON_MAX_DEPTH 32

class CJsonWriter
  {
public:
   string            m_out;
   int               m_depth;
   bool              m_first[JSON_MAX_DEPTH];
   bool              m_after_key;

   // members are defined before their first use (no reliance on in-class forward references)
   void              Reset(void)
     {
      m_out = "";
      m_depth = 0;
      m_after_key = false;
      for(int i = 0; i < JSON_MAX_DEPTH; i++)
         m_first[i] = true;
     }
                     CJsonWriter(void) { Reset(); }
   string            Text(void) const { return m_out; }
   void              Pre(void)
     {
      if(m_after_key)
        {
         m_after_key = false;
         return;
        }
      if(m_depth > 0)
        {
         if(!m_first[m_depth])
            m_out += ",";
         m_first[m_depth] = false;
        }
     }
   void              Open(const string bracket)
     {
      Pre();
      m_out += bracket;
      if(m_depth < JSON_MAX_DEPTH - 1)
         m_depth++;
      m_first[m_depth] = true;
     }
   void              Close(const string bracket)
     {
      m_out += bracket;
      if(m_depth > 0)
         m_depth--;
     }
   void              BeginObject(void) { Open("{"); }
   void              EndObject(void) { Close("}"); }
   void              BeginArray(void) { Open("["); }
   void              EndArray(void) { Close("]"); }
   void              Key(const string k)
     {
      Pre();
      m_out += JsonQuote(k) + ":";
      m_after_key = true;
     }
   void              Raw(const string text) { Pre(); m_out += text; }
   void              Str(const string v) { Raw(JsonQuote(v)); }
   void              StrOrNull(const string v) { Raw(v == "" ? "null" : JsonQuote(v)); }
   void              Int(const long v) { Raw(IntegerToString(v)); }
   void              Bool(const bool v) { Raw(v ? "true" : "false"); }
   void              Null(void) { Raw("null"); }
   void              KRaw(const string k, const string text) { Key(k); Raw(text); }
   void              KStr(const string k, const string v) { Key(k); Str(v); }
   void              KInt(const string k, const long v) { Key(k); Int(v); }
   void              KBool(const string k, const bool v) { Key(k); Bool(v); }
  };

//==================================================================
// Outgoing messages
//==================================================================

// The EA's hard-limit inputs, sent in the hello as ea.limits: the sidecar logs, and shows in
// /health (degraded), any that is looser than its own configuration. The EA enforces its own
// limits either way (Guard.mqh).
struct ProtoEaLimits
  {
   double            max_risk_pct;       // InpMaxRiskPct
   double            max_leverage;       // InpMaxLeverage
   double            daily_loss_pct;     // InpDailyLossPct
   double            floating_loss_pct;  // InpFloatingLossPct
   double            max_drawdown_pct;   // InpMaxDrawdownPct
   int               max_positions;      // InpMaxPositions
   double            equity_floor_pct;   // InpEquityFloorPct (0 = off)
  };

struct ProtoEa
  {
   string            name;
   string            version;
   long              magic;
   bool              tester;
   double            day_offset_hours;   // InpDayOffsetHours: the sidecar checks it matches its own
   bool              has_limits;         // send ea.limits (the EA always does; false = the
                                         // hello of an EA older than the field)
   ProtoEaLimits     limits;             // the hard limits: the sidecar checks none is looser
  };

struct ProtoAccount
  {
   long              login;
   string            server;
   string            currency;
   long              leverage;
   double            balance;
   double            equity;
   double            margin;
   double            free_margin;
  };

struct ProtoSymbol
  {
   string            name;
   string            base;
   string            quote;
   int               digits;
   double            point;
   double            tick_size;
   double            tick_value;
   double            contract_size;
   double            volume_min;
   double            volume_step;
   double            volume_max;
   int               stops_level;
   int               freeze_level;
  };

struct ProtoBar
  {
   long              time;
   double            open;
   double            high;
   double            low;
   double            close;
   long              tick_volume;
   int               spread;
  };

struct ProtoPosition
  {
   long              ticket;
   string            symbol;
   string            side;
   double            volume;
   double            price_open;
   double            sl;
   double            tp;
   double            profit;
   double            swap;
   long              time;
   string            comment;
  };

struct ProtoTrade
  {
   long              login;
   long              deal;
   long              order;
   long              position;
   string            symbol;
   string            side;         // buy / sell
   string            entry;        // in / out / inout / out_by
   double            volume;
   double            price;
   double            profit;
   double            commission;
   double            swap;
   long              time;
   string            comment;
  };

struct ProtoEvent
  {
   string            id;
   long              time_gmt;
   string            currency;
   string            importance;   // low / medium / high
   string            name;
   bool              has_actual;
   double            actual;
   bool              has_forecast;
   double            forecast;
   bool              has_previous;
   double            previous;
  };

// Envelope: {"v":1,"type":...,"id":...,"token":... (token only when set)
void ProtoEnvelope(CJsonWriter &w, const string type, const string id, const string token)
  {
   w.Reset();
   w.BeginObject();
   w.KInt("v", PROTO_VERSION);
   w.KStr("type", type);
   w.KStr("id", id);
   if(token != "")
      w.KStr("token", token);
  }

// A queued trade message with the current token: the queue stores messages without one (a
// token changed between queueing and sending must not leave them refused for good), and an
// older queue's messages may carry a previous one. The envelope is ours: the token, if any,
// follows the id, and "login" follows it.
string ProtoTradeWithToken(const string msg, const string token)
  {
   int login = StringFind(msg, ",\"login\":");
   if(login < 0)
      return msg;
   int old_token = StringFind(msg, ",\"token\":");
   string head = ScSubstr(msg, 0, old_token >= 0 && old_token < login ? old_token : login);
   return head + (token != "" ? ",\"token\":" + JsonQuote(token) : "") + StringSubstr(msg, login);
  }

// "tester":true on tick, trade and heartbeat from a Strategy Tester run (the hello carries it as
// ea.tester): the sidecar keeps those sessions apart from the live ones on the same login. Live
// messages omit the field (its default is false), so their bytes stay as they were.
void ProtoTesterFlag(CJsonWriter &w, const bool tester)
  {
   if(tester)
      w.KBool("tester", true);
  }

void ProtoTime(CJsonWriter &w, const long server, const long gmt)
  {
   w.Key("time");
   w.BeginObject();
   w.KInt("server", server);
   w.KInt("gmt", gmt);
   w.EndObject();
  }

void ProtoWriteBar(CJsonWriter &w, const ProtoBar &b, const int digits)
  {
   w.BeginArray();
   w.Int(b.time);
   w.Raw(JsonPrice(b.open, digits));
   w.Raw(JsonPrice(b.high, digits));
   w.Raw(JsonPrice(b.low, digits));
   w.Raw(JsonPrice(b.close, digits));
   w.Int(b.tick_volume);
   w.Int(b.spread);
   w.EndArray();
  }

void ProtoHelloBegin(CJsonWriter &w, const string id, const string token, const ProtoEa &ea, const ProtoAccount &acc,
                     const long server, const long gmt, const ProtoSymbol &sym, const string timeframe)
  {
   ProtoEnvelope(w, "hello", id, token);
   w.Key("ea");
   w.BeginObject();
   w.KStr("name", ea.name);
   w.KStr("version", ea.version);
   w.KInt("magic", ea.magic);
   w.KBool("tester", ea.tester);
   w.KRaw("day_offset_hours", JsonExact(ea.day_offset_hours));
   if(ea.has_limits)
     {
      w.Key("limits");
      w.BeginObject();
      w.KRaw("max_risk_pct", JsonExact(ea.limits.max_risk_pct));
      w.KRaw("max_leverage", JsonExact(ea.limits.max_leverage));
      w.KRaw("daily_loss_pct", JsonExact(ea.limits.daily_loss_pct));
      w.KRaw("floating_loss_pct", JsonExact(ea.limits.floating_loss_pct));
      w.KRaw("max_drawdown_pct", JsonExact(ea.limits.max_drawdown_pct));
      w.KInt("max_positions", ea.limits.max_positions);
      w.KRaw("equity_floor_pct", JsonExact(ea.limits.equity_floor_pct));
      w.EndObject();
     }
   w.EndObject();
   w.Key("account");
   w.BeginObject();
   w.KInt("login", acc.login);
   w.KStr("server", acc.server);
   w.KStr("currency", acc.currency);
   w.KInt("leverage", acc.leverage);
   w.KRaw("balance", JsonMoney(acc.balance));
   w.KRaw("equity", JsonMoney(acc.equity));
   w.KRaw("margin", JsonMoney(acc.margin));
   w.KRaw("free_margin", JsonMoney(acc.free_margin));
   w.EndObject();
   ProtoTime(w, server, gmt);
   w.Key("symbol");
   w.BeginObject();
   w.KStr("name", sym.name);
   w.KStr("base", sym.base);
   w.KStr("quote", sym.quote);
   w.KInt("digits", sym.digits);
   w.KRaw("point", JsonExact(sym.point));
   w.KRaw("tick_size", JsonExact(sym.tick_size));
   w.KRaw("tick_value", JsonExact(sym.tick_value));
   w.KRaw("contract_size", JsonExact(sym.contract_size));
   w.KRaw("volume_min", JsonVolume(sym.volume_min));
   w.KRaw("volume_step", JsonVolume(sym.volume_step));
   w.KRaw("volume_max", JsonVolume(sym.volume_max));
   w.KInt("stops_level", sym.stops_level);
   w.KInt("freeze_level", sym.freeze_level);
   w.EndObject();
   w.KStr("timeframe", timeframe);
   w.Key("bars");
   w.BeginArray();
  }

void ProtoHelloEnd(CJsonWriter &w)
  {
   w.EndArray();
   w.EndObject();
  }

// Opens the "positions" array; then ProtoWritePosition..., ProtoTickBars, ProtoWriteBar..., ProtoTickEnd.
// tester: the EA runs in the Strategy Tester (see ProtoTesterFlag).
void ProtoTickBegin(CJsonWriter &w, const string id, const string token, const long login, const string symbol,
                    const string timeframe, const long server, const long gmt, const long msc, const double bid,
                    const double ask, const int digits, const ProtoAccount &acc, const bool tester)
  {
   ProtoEnvelope(w, "tick", id, token);
   w.KInt("login", login);
   ProtoTesterFlag(w, tester);
   w.KStr("symbol", symbol);
   w.KStr("timeframe", timeframe);
   w.Key("time");
   w.BeginObject();
   w.KInt("server", server);
   w.KInt("gmt", gmt);
   w.KInt("msc", msc);
   w.EndObject();
   w.KRaw("bid", JsonPrice(bid, digits));
   w.KRaw("ask", JsonPrice(ask, digits));
   w.Key("account");
   w.BeginObject();
   w.KRaw("balance", JsonMoney(acc.balance));
   w.KRaw("equity", JsonMoney(acc.equity));
   w.KRaw("margin", JsonMoney(acc.margin));
   w.KRaw("free_margin", JsonMoney(acc.free_margin));
   w.EndObject();
   w.Key("positions");
   w.BeginArray();
  }

void ProtoWritePosition(CJsonWriter &w, const ProtoPosition &p, const int digits)
  {
   w.BeginObject();
   w.KInt("ticket", p.ticket);
   w.KStr("symbol", p.symbol);
   w.KStr("side", p.side);
   w.KRaw("volume", JsonVolume(p.volume));
   w.KRaw("price_open", JsonPrice(p.price_open, digits));
   w.KRaw("sl", JsonPrice(p.sl, digits));
   w.KRaw("tp", JsonPrice(p.tp, digits));
   w.KRaw("profit", JsonMoney(p.profit));
   w.KRaw("swap", JsonMoney(p.swap));
   w.KInt("time", p.time);
   w.KStr("comment", p.comment);
   w.EndObject();
  }

void ProtoTickBars(CJsonWriter &w)
  {
   w.EndArray();
   w.Key("bars");
   w.BeginArray();
  }

void ProtoTickEnd(CJsonWriter &w)
  {
   w.EndArray();
   w.EndObject();
  }

// tester: the deal is one of a Strategy Tester run (see ProtoTesterFlag).
string ProtoTradeJson(const string id, const string token, const ProtoTrade &t, const int digits, const bool tester)
  {
   CJsonWriter w;
   ProtoEnvelope(w, "trade", id, token);
   w.KInt("login", t.login);
   ProtoTesterFlag(w, tester);
   w.KInt("deal", t.deal);
   w.KInt("order", t.order);
   w.KInt("position", t.position);
   w.KStr("symbol", t.symbol);
   w.KStr("side", t.side);
   w.KStr("entry", t.entry);
   w.KRaw("volume", JsonVolume(t.volume));
   w.KRaw("price", JsonPrice(t.price, digits));
   w.KRaw("profit", JsonMoney(t.profit));
   w.KRaw("commission", JsonMoney(t.commission));
   w.KRaw("swap", JsonMoney(t.swap));
   w.KInt("time", t.time);
   w.KStr("comment", t.comment);
   w.EndObject();
   return w.Text();
  }

void ProtoCalendarBegin(CJsonWriter &w, const string id, const string token, const long login)
  {
   ProtoEnvelope(w, "calendar", id, token);
   w.KInt("login", login);
   w.KStr("source", "mt5");
   w.Key("events");
   w.BeginArray();
  }

void ProtoWriteEvent(CJsonWriter &w, const ProtoEvent &e)
  {
   w.BeginObject();
   w.KStr("id", e.id);
   w.KInt("time_gmt", e.time_gmt);
   w.KStr("currency", e.currency);
   w.KStr("importance", e.importance);
   w.KStr("name", e.name);
   w.KRaw("actual", e.has_actual ? JsonDecimal(e.actual, 1, 6) : "null");
   w.KRaw("forecast", e.has_forecast ? JsonDecimal(e.forecast, 1, 6) : "null");
   w.KRaw("previous", e.has_previous ? JsonDecimal(e.previous, 1, 6) : "null");
   w.EndObject();
  }

void ProtoCalendarEnd(CJsonWriter &w)
  {
   w.EndArray();
   w.EndObject();
  }

// tester: the EA runs in the Strategy Tester (see ProtoTesterFlag).
string ProtoHeartbeatJson(const string id, const string token, const long login, const string symbol, const long server,
                          const long gmt, const bool tester)
  {
   CJsonWriter w;
   ProtoEnvelope(w, "heartbeat", id, token);
   w.KInt("login", login);
   ProtoTesterFlag(w, tester);
   w.KStr("symbol", symbol);
   ProtoTime(w, server, gmt);
   w.EndObject();
   return w.Text();
  }

//==================================================================
// Parser: a strict JSON tokenizer that flattens a document into
// (path, type, value) entries: "open.side", "close[0].ticket", ...
// Containers are entries too (value = member/element count).
//==================================================================

#define JSON_T_NULL   0
#define JSON_T_BOOL   1
#define JSON_T_NUM    2
#define JSON_T_STR    3
#define JSON_T_OBJ    4
#define JSON_T_ARR    5
#define JSON_T_NONE   -1

#ifndef JSON_MAX_ENTRIES
#define JSON_MAX_ENTRIES 1024   // replies are small; a test driver reading big inputs raises it
#endif
#define JSON_MAX_NEST    16
#define JSON_MAX_EXP     400

string JsonCodePointString(const int cp)
  {
#ifdef __MQL5__
   if(cp < 0x10000)
      return ShortToString((ushort)cp);
   int v = cp - 0x10000;
   return ShortToString((ushort)(0xD800 + (v >> 10))) + ShortToString((ushort)(0xDC00 + (v & 0x3FF)));
#else
   return ShimCodePointToUtf8(cp);
#endif
  }

bool JsonIsDigit(const ushort c) { return c >= '0' && c <= '9'; }

int JsonHexValue(const ushort c)
  {
   if(c >= '0' && c <= '9')
      return c - '0';
   if(c >= 'a' && c <= 'f')
      return c - 'a' + 10;
   if(c >= 'A' && c <= 'F')
      return c - 'A' + 10;
   return -1;
  }

// Converts a validated JSON number to double without relying on exponent support in
// StringToDouble: the exponent is applied by moving the decimal point in the text.
double JsonNumberToDouble(const string t, bool &ok)
  {
   ok = false;
   int n = StringLen(t);
   int i = 0;
   bool neg = false;
   if(i < n && StringGetCharacter(t, i) == '-')
     {
      neg = true;
      i++;
     }
   string digits = "";
   int int_len = 0;
   int run = i;
   while(i < n && JsonIsDigit(StringGetCharacter(t, i)))
      i++;
   digits = ScSubstr(t, run, i - run);
   int_len = i - run;
   if(i < n && StringGetCharacter(t, i) == '.')
     {
      i++;
      run = i;
      while(i < n && JsonIsDigit(StringGetCharacter(t, i)))
         i++;
      digits += ScSubstr(t, run, i - run);
     }
   long exp10 = 0;
   if(i < n && (StringGetCharacter(t, i) == 'e' || StringGetCharacter(t, i) == 'E'))
     {
      i++;
      bool eneg = false;
      if(i < n && (StringGetCharacter(t, i) == '+' || StringGetCharacter(t, i) == '-'))
        {
         eneg = StringGetCharacter(t, i) == '-';
         i++;
        }
      while(i < n && JsonIsDigit(StringGetCharacter(t, i)))
        {
         exp10 = exp10 * 10 + (StringGetCharacter(t, i) - '0');
         if(exp10 > 100000)
            return 0.0;
         i++;
        }
      if(eneg)
         exp10 = -exp10;
     }
   // strip leading zeros (keeping the point position right)
   int lead = 0;
   int dl = StringLen(digits);
   while(lead < dl && StringGetCharacter(digits, lead) == '0')
      lead++;
   if(lead == dl)
     {
      ok = true;
      return neg ? -0.0 : 0.0;
     }
   digits = StringSubstr(digits, lead);
   dl = StringLen(digits);
   long point = (long)int_len - lead + exp10;   // digits before the decimal point
   if(point > JSON_MAX_EXP || point < -JSON_MAX_EXP)
      return 0.0;
   string text = "";
   if(point <= 0)
     {
      text = "0.";
      for(long k = 0; k < -point; k++)
         text += "0";
      text += digits;
     }
   else
      if(point >= dl)
        {
         text = digits;
         for(long k = dl; k < point; k++)
            text += "0";
        }
      else
         text = ScSubstr(digits, 0, (int)point) + "." + StringSubstr(digits, (int)point);
   double v = StringToDouble(text);
   if(!MathIsValidNumber(v))
      return 0.0;
   ok = true;
   return neg ? -v : v;
  }

class CJsonFlat
  {
public:
   int               m_count;
   string            m_path[JSON_MAX_ENTRIES];
   int               m_type[JSON_MAX_ENTRIES];
   string            m_val[JSON_MAX_ENTRIES];
   string            m_error;

   string            m_s;
   int               m_pos;
   int               m_len;

                     CJsonFlat(void) { m_count = 0; m_error = ""; m_pos = 0; m_len = 0; }

   bool              Fail(const string why)
     {
      if(m_error == "")
         m_error = why + " at " + IntegerToString(m_pos);
      return false;
     }

   void              SkipWs(void)
     {
      while(m_pos < m_len)
        {
         ushort c = StringGetCharacter(m_s, m_pos);
         if(c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
         m_pos++;
        }
     }

   int               Add(const string path, const int type, const string val, const bool store)
     {
      if(!store)
         return -2;
      if(m_count >= JSON_MAX_ENTRIES)
         return -1;
      m_path[m_count] = path;
      m_type[m_count] = type;
      m_val[m_count] = val;
      m_count++;
      return m_count - 1;
     }

   bool              ParseHex4(int &cp)
     {
      cp = 0;
      if(m_pos + 4 > m_len)
         return Fail("short \\u escape");
      for(int k = 0; k < 4; k++)
        {
         int h = JsonHexValue(StringGetCharacter(m_s, m_pos + k));
         if(h < 0)
            return Fail("bad \\u escape");
         cp = cp * 16 + h;
        }
      m_pos += 4;
      return true;
     }

   bool              ParseString(string &out)
     {
      out = "";
      if(m_pos >= m_len || StringGetCharacter(m_s, m_pos) != '"')
         return Fail("expected string");
      m_pos++;
      int run = m_pos;
      while(true)
        {
         if(m_pos >= m_len)
            return Fail("unterminated string");
         ushort c = StringGetCharacter(m_s, m_pos);
         if(c == '"')
           {
            out += ScSubstr(m_s, run, m_pos - run);
            m_pos++;
            return true;
           }
         if(c < 0x20)
            return Fail("control character in string");
         if(c != '\\')
           {
            m_pos++;
            continue;
           }
         out += ScSubstr(m_s, run, m_pos - run);
         m_pos++;
         if(m_pos >= m_len)
            return Fail("unterminated escape");
         ushort e = StringGetCharacter(m_s, m_pos);
         m_pos++;
         if(e == '"')
            out += "\"";
         else
            if(e == '\\')
               out += "\\";
            else
               if(e == '/')
                  out += "/";
               else
                  if(e == 'b')
                     out += JsonCodePointString(8);
                  else
                     if(e == 'f')
                        out += JsonCodePointString(12);
                     else
                        if(e == 'n')
                           out += "\n";
                        else
                           if(e == 'r')
                              out += "\r";
                           else
                              if(e == 't')
                                 out += "\t";
                              else
                                 if(e == 'u')
                                   {
                                    int cp = 0;
                                    if(!ParseHex4(cp))
                                       return false;
                                    if(cp >= 0xDC00 && cp <= 0xDFFF)
                                       return Fail("lone low surrogate");
                                    if(cp >= 0xD800 && cp <= 0xDBFF)
                                      {
                                       if(m_pos + 1 >= m_len || StringGetCharacter(m_s, m_pos) != '\\' ||
                                          StringGetCharacter(m_s, m_pos + 1) != 'u')
                                          return Fail("lone high surrogate");
                                       m_pos += 2;
                                       int lo = 0;
                                       if(!ParseHex4(lo))
                                          return false;
                                       if(lo < 0xDC00 || lo > 0xDFFF)
                                          return Fail("bad low surrogate");
                                       cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                      }
                                    out += JsonCodePointString(cp);
                                   }
                                 else
                                    return Fail("bad escape");
         run = m_pos;
        }
      return false;
     }

   bool              ParseNumber(string &out)
     {
      int start = m_pos;
      if(m_pos < m_len && StringGetCharacter(m_s, m_pos) == '-')
         m_pos++;
      if(m_pos >= m_len || !JsonIsDigit(StringGetCharacter(m_s, m_pos)))
         return Fail("bad number");
      if(StringGetCharacter(m_s, m_pos) == '0')
         m_pos++;
      else
         while(m_pos < m_len && JsonIsDigit(StringGetCharacter(m_s, m_pos)))
            m_pos++;
      if(m_pos < m_len && StringGetCharacter(m_s, m_pos) == '.')
        {
         m_pos++;
         if(m_pos >= m_len || !JsonIsDigit(StringGetCharacter(m_s, m_pos)))
            return Fail("bad fraction");
         while(m_pos < m_len && JsonIsDigit(StringGetCharacter(m_s, m_pos)))
            m_pos++;
        }
      if(m_pos < m_len && (StringGetCharacter(m_s, m_pos) == 'e' || StringGetCharacter(m_s, m_pos) == 'E'))
        {
         m_pos++;
         if(m_pos < m_len && (StringGetCharacter(m_s, m_pos) == '+' || StringGetCharacter(m_s, m_pos) == '-'))
            m_pos++;
         if(m_pos >= m_len || !JsonIsDigit(StringGetCharacter(m_s, m_pos)))
            return Fail("bad exponent");
         while(m_pos < m_len && JsonIsDigit(StringGetCharacter(m_s, m_pos)))
            m_pos++;
        }
      out = ScSubstr(m_s, start, m_pos - start);
      return true;
     }

   bool              Literal(const string word)
     {
      int n = StringLen(word);
      if(ScSubstr(m_s, m_pos, n) != word)
         return Fail("bad literal");
      m_pos += n;
      return true;
     }

   // Keys that would make paths ambiguous are parsed but not stored.
   bool              PlainKey(const string k)
     {
      return StringFind(k, ".") < 0 && StringFind(k, "[") < 0 && StringFind(k, "]") < 0;
     }

   bool              ParseValue(const string path, const int depth, const bool store)
     {
      if(depth > JSON_MAX_NEST)
         return Fail("nesting too deep");
      SkipWs();
      if(m_pos >= m_len)
         return Fail("unexpected end");
      ushort c = StringGetCharacter(m_s, m_pos);
      if(c == '{')
        {
         int idx = Add(path, JSON_T_OBJ, "0", store);
         if(idx == -1)
            return Fail("too many entries");
         m_pos++;
         SkipWs();
         int count = 0;
         if(m_pos < m_len && StringGetCharacter(m_s, m_pos) == '}')
           {
            m_pos++;
            return true;
           }
         while(true)
           {
            SkipWs();
            string key = "";
            if(!ParseString(key))
               return false;
            SkipWs();
            if(m_pos >= m_len || StringGetCharacter(m_s, m_pos) != ':')
               return Fail("expected ':'");
            m_pos++;
            bool keep = store && PlainKey(key);
            string child = path == "" ? key : path + "." + key;
            if(!ParseValue(child, depth + 1, keep))
               return false;
            count++;
            SkipWs();
            if(m_pos >= m_len)
               return Fail("unterminated object");
            ushort d = StringGetCharacter(m_s, m_pos);
            m_pos++;
            if(d == '}')
               break;
            if(d != ',')
               return Fail("expected ',' or '}'");
           }
         if(idx >= 0)
            m_val[idx] = IntegerToString(count);
         return true;
        }
      if(c == '[')
        {
         int idx = Add(path, JSON_T_ARR, "0", store);
         if(idx == -1)
            return Fail("too many entries");
         m_pos++;
         SkipWs();
         int count = 0;
         if(m_pos < m_len && StringGetCharacter(m_s, m_pos) == ']')
           {
            m_pos++;
            return true;
           }
         while(true)
           {
            if(!ParseValue(path + "[" + IntegerToString(count) + "]", depth + 1, store))
               return false;
            count++;
            SkipWs();
            if(m_pos >= m_len)
               return Fail("unterminated array");
            ushort d = StringGetCharacter(m_s, m_pos);
            m_pos++;
            if(d == ']')
               break;
            if(d != ',')
               return Fail("expected ',' or ']'");
           }
         if(idx >= 0)
            m_val[idx] = IntegerToString(count);
         return true;
        }
      int type = JSON_T_NONE;
      string val = "";
      if(c == '"')
        {
         if(!ParseString(val))
            return false;
         type = JSON_T_STR;
        }
      else
         if(c == 't')
           {
            if(!Literal("true"))
               return false;
            type = JSON_T_BOOL;
            val = "true";
           }
         else
            if(c == 'f')
              {
               if(!Literal("false"))
                  return false;
               type = JSON_T_BOOL;
               val = "false";
              }
            else
               if(c == 'n')
                 {
                  if(!Literal("null"))
                     return false;
                  type = JSON_T_NULL;
                 }
               else
                 {
                  if(!ParseNumber(val))
                     return false;
                  type = JSON_T_NUM;
                 }
      if(Add(path, type, val, store) == -1)
         return Fail("too many entries");
      return true;
     }

   // Parses one JSON document; a single trailing NUL (from StringToCharArray) is accepted.
   bool              Parse(const string text)
     {
      m_count = 0;
      m_error = "";
      m_s = text;
      m_len = StringLen(text);
      if(m_len > 0 && StringGetCharacter(text, m_len - 1) == 0)
         m_len--;
      m_pos = 0;
      if(!ParseValue("", 0, true))
         return false;
      SkipWs();
      if(m_pos != m_len)
         return Fail("trailing data");
      return true;
     }

   int               Find(const string path) const
     {
      for(int i = m_count - 1; i >= 0; i--)
         if(m_path[i] == path)
            return i;
      return -1;
     }

   int               TypeOf(const string path) const
     {
      int i = Find(path);
      return i < 0 ? JSON_T_NONE : m_type[i];
     }

   // absent or null
   bool              IsNull(const string path) const
     {
      int t = TypeOf(path);
      return t == JSON_T_NONE || t == JSON_T_NULL;
     }

   bool              GetString(const string path, string &out) const
     {
      int i = Find(path);
      if(i < 0 || m_type[i] != JSON_T_STR)
         return false;
      out = m_val[i];
      return true;
     }

   bool              GetBool(const string path, bool &out) const
     {
      int i = Find(path);
      if(i < 0 || m_type[i] != JSON_T_BOOL)
         return false;
      out = m_val[i] == "true";
      return true;
     }

   bool              GetDouble(const string path, double &out) const
     {
      int i = Find(path);
      if(i < 0 || m_type[i] != JSON_T_NUM)
         return false;
      bool ok = false;
      out = JsonNumberToDouble(m_val[i], ok);
      return ok;
     }

   // Integral numbers only (1734478806 or 1734478806.0), within +-9e18.
   bool              GetLong(const string path, long &out) const
     {
      int i = Find(path);
      if(i < 0 || m_type[i] != JSON_T_NUM)
         return false;
      string t = m_val[i];
      if(StringFind(t, ".") < 0 && StringFind(t, "e") < 0 && StringFind(t, "E") < 0)
        {
         bool neg = StringGetCharacter(t, 0) == '-';
         int digits = StringLen(t) - (neg ? 1 : 0);
         if(digits > 19)
            return false;
         // 19 digits: compare with the long range as text (equal-length digit strings)
         if(digits == 19 && StringSubstr(t, neg ? 1 : 0) > (neg ? "9223372036854775808" : "9223372036854775807"))
            return false;
         out = StringToInteger(t);
         return true;
        }
      bool ok = false;
      double d = JsonNumberToDouble(t, ok);
      if(!ok || d != MathFloor(d) || MathAbs(d) > 9.0e18)
         return false;
      out = (long)d;
      return true;
     }

   // Element/member count of a container, -1 when the path is not that container.
   int               Count(const string path, const int type) const
     {
      int i = Find(path);
      if(i < 0 || m_type[i] != type)
         return -1;
      return (int)StringToInteger(m_val[i]);
     }
  };

//==================================================================
// Replies
//==================================================================

#define PROTO_REPLY_NONE    0
#define PROTO_REPLY_VERDICT 1
#define PROTO_REPLY_ACK     2
#define PROTO_REPLY_ERROR   3

#define PROTO_MAX_CLOSE   32
#define PROTO_MAX_REASONS 16

// manage fields, in this order
#define PROTO_M_BREAKEVEN_R      0
#define PROTO_M_PARTIAL_R        1
#define PROTO_M_PARTIAL_FRACTION 2
#define PROTO_M_TRAIL_ATR        3
#define PROTO_M_TRAIL_DISTANCE   4
#define PROTO_M_BREAKEVEN_BUFFER 5   // optional (default 0)
#define PROTO_M_REQUIRED         5   // the first five are required
#define PROTO_M_COUNT            6

struct ProtoReply
  {
   int               kind;              // PROTO_REPLY_*
   string            id;
   string            type;
   string            problem;           // why kind is NONE (for the log)
   // verdict
   string            action;            // open / hold / close / reduce
   string            mode;              // active / reducing / halted
   bool              has_open;
   string            open_side;         // buy / sell
   double            open_volume;
   double            open_sl;
   double            open_tp;           // 0 = none
   bool              has_risk_pct;
   double            open_risk_pct;
   string            open_signal_id;
   int               close_count;
   long              close_ticket[PROTO_MAX_CLOSE];
   double            close_volume[PROTO_MAX_CLOSE];   // 0 = the whole position
   bool              has_manage;
   bool              manage_has[PROTO_M_COUNT];
   double            manage_val[PROTO_M_COUNT];
   bool              has_leverage_cap;
   double            leverage_cap;
   long              valid_until;
   int               reason_total;
   int               reason_count;      // stored, at most PROTO_MAX_REASONS
   string            reasons[PROTO_MAX_REASONS];
   // error
   string            error_code;
   string            error_message;
  };

string ProtoManageName(const int k)
  {
   switch(k)
     {
      case PROTO_M_BREAKEVEN_R:
         return "breakeven_r";
      case PROTO_M_PARTIAL_R:
         return "partial_r";
      case PROTO_M_PARTIAL_FRACTION:
         return "partial_fraction";
      case PROTO_M_TRAIL_ATR:
         return "trail_atr";
      case PROTO_M_TRAIL_DISTANCE:
         return "trail_distance";
      case PROTO_M_BREAKEVEN_BUFFER:
         return "breakeven_buffer";
     }
   return "";
  }

void ProtoReplyReset(ProtoReply &r)
  {
   r.kind = PROTO_REPLY_NONE;
   r.id = "";
   r.type = "";
   r.problem = "";
   r.action = "";
   r.mode = "";
   r.has_open = false;
   r.open_side = "";
   r.open_volume = 0.0;
   r.open_sl = 0.0;
   r.open_tp = 0.0;
   r.has_risk_pct = false;
   r.open_risk_pct = 0.0;
   r.open_signal_id = "";
   r.close_count = 0;
   for(int i = 0; i < PROTO_MAX_CLOSE; i++)
     {
      r.close_ticket[i] = 0;
      r.close_volume[i] = 0.0;
     }
   r.has_manage = false;
   for(int k = 0; k < PROTO_M_COUNT; k++)
     {
      r.manage_has[k] = false;
      r.manage_val[k] = 0.0;
     }
   r.has_leverage_cap = false;
   r.leverage_cap = 0.0;
   r.valid_until = 0;
   r.reason_total = 0;
   r.reason_count = 0;
   for(int i = 0; i < PROTO_MAX_REASONS; i++)
      r.reasons[i] = "";
   r.error_code = "";
   r.error_message = "";
  }

bool ProtoReject(ProtoReply &r, const string problem)
  {
   string id = r.id;
   string type = r.type;
   ProtoReplyReset(r);
   r.id = id;
   r.type = type;
   r.problem = problem;
   return false;
  }

// "ok" is optional (default true); when present it must be the boolean true.
bool ProtoOkTrue(const CJsonFlat &j)
  {
   if(j.TypeOf("ok") == JSON_T_NONE)
      return true;
   bool ok = false;
   return j.GetBool("ok", ok) && ok;
  }

// Required fields follow shared_schema/verdict.schema.json: type, v, id (a string here: a null id
// cannot be matched to the request), action, mode, manage, leverage_cap, valid_until; when action is
// open, open with side, volume, sl, tp, risk_pct, signal_id.
bool ProtoParseVerdict(const CJsonFlat &j, ProtoReply &r)
  {
   if(!ProtoOkTrue(j))
      return ProtoReject(r, "verdict: ok must be true");
   if(!j.GetString("action", r.action) ||
      (r.action != "open" && r.action != "hold" && r.action != "close" && r.action != "reduce"))
      return ProtoReject(r, "verdict: action must be open/hold/close/reduce");
   if(!j.GetString("mode", r.mode) || (r.mode != "active" && r.mode != "reducing" && r.mode != "halted"))
      return ProtoReject(r, "verdict: mode must be active/reducing/halted");
   if(!j.GetLong("valid_until", r.valid_until))
      return ProtoReject(r, "verdict: valid_until must be an integer");
   if(r.action == "open")
     {
      if(j.TypeOf("open") != JSON_T_OBJ)
         return ProtoReject(r, "verdict: open must be an object when action is open");
      if(!j.GetString("open.side", r.open_side) || (r.open_side != "buy" && r.open_side != "sell"))
         return ProtoReject(r, "verdict: open.side must be buy/sell");
      if(!j.GetDouble("open.volume", r.open_volume) || !(r.open_volume > 0.0))
         return ProtoReject(r, "verdict: open.volume must be a number > 0");
      if(!j.GetDouble("open.sl", r.open_sl) || !(r.open_sl > 0.0))
         return ProtoReject(r, "verdict: open.sl must be a number > 0");
      if(!j.GetDouble("open.tp", r.open_tp) || !(r.open_tp > 0.0))
         return ProtoReject(r, "verdict: open.tp must be a number > 0");
      if(!j.GetDouble("open.risk_pct", r.open_risk_pct) || !(r.open_risk_pct > 0.0))
         return ProtoReject(r, "verdict: open.risk_pct must be a number > 0");
      r.has_risk_pct = true;
      if(!j.GetString("open.signal_id", r.open_signal_id) || r.open_signal_id == "")
         return ProtoReject(r, "verdict: open.signal_id must be a non-empty string");
      r.has_open = true;
     }
   if(!j.IsNull("close"))
     {
      int n = j.Count("close", JSON_T_ARR);
      if(n < 0)
         return ProtoReject(r, "verdict: close must be an array or null");
      if(n > PROTO_MAX_CLOSE)
         return ProtoReject(r, "verdict: close has more than " + IntegerToString(PROTO_MAX_CLOSE) + " entries");
      for(int i = 0; i < n; i++)
        {
         string p = "close[" + IntegerToString(i) + "]";
         if(j.TypeOf(p) != JSON_T_OBJ)
            return ProtoReject(r, "verdict: " + p + " must be an object");
         long ticket = 0;
         if(!j.GetLong(p + ".ticket", ticket) || ticket < 0)
            return ProtoReject(r, "verdict: " + p + ".ticket must be an integer >= 0");
         double vol = 0.0;
         if(!j.GetDouble(p + ".volume", vol) || !(vol > 0.0))
            return ProtoReject(r, "verdict: " + p + ".volume must be a number > 0");
         r.close_ticket[i] = ticket;
         r.close_volume[i] = vol;
        }
      r.close_count = n;
     }
   if(j.TypeOf("manage") != JSON_T_OBJ)
      return ProtoReject(r, "verdict: manage must be an object");
   for(int k = 0; k < PROTO_M_COUNT; k++)
     {
      string p = "manage." + ProtoManageName(k);
      if(k >= PROTO_M_REQUIRED && j.IsNull(p))
         continue;
      if(!j.GetDouble(p, r.manage_val[k]) || r.manage_val[k] < 0.0)
         return ProtoReject(r, "verdict: " + p + " must be a number >= 0");
      r.manage_has[k] = true;
     }
   r.has_manage = true;
   if(!j.GetDouble("leverage_cap", r.leverage_cap) || !(r.leverage_cap > 0.0))
      return ProtoReject(r, "verdict: leverage_cap must be a number > 0");
   r.has_leverage_cap = true;
   if(!j.IsNull("reasons"))
     {
      int n = j.Count("reasons", JSON_T_ARR);
      if(n < 0)
         return ProtoReject(r, "verdict: reasons must be an array of strings");
      for(int i = 0; i < n; i++)
        {
         string s = "";
         if(!j.GetString("reasons[" + IntegerToString(i) + "]", s))
            return ProtoReject(r, "verdict: reasons must be an array of strings");
         if(i < PROTO_MAX_REASONS)
            r.reasons[i] = s;
        }
      r.reason_total = n;
      r.reason_count = n < PROTO_MAX_REASONS ? n : PROTO_MAX_REASONS;
     }
   r.kind = PROTO_REPLY_VERDICT;
   return true;
  }

// Parses a reply into r. Returns true for a well-formed verdict, ack or error; false (kind NONE,
// problem set) otherwise.
// j is a caller-owned workspace (the EA keeps one global instance instead of a large local).
bool ProtoParseReplyWith(CJsonFlat &j, const string text, ProtoReply &r)
  {
   ProtoReplyReset(r);
   if(!j.Parse(text))
      return ProtoReject(r, "malformed JSON: " + j.m_error);
   if(j.TypeOf("") != JSON_T_OBJ)
      return ProtoReject(r, "reply must be a JSON object");
   long v = 0;
   if(!j.GetLong("v", v) || v != PROTO_VERSION)
      return ProtoReject(r, "v must be 1");
   if(!j.GetString("type", r.type))
      return ProtoReject(r, "type must be a string");
   if(!j.GetString("id", r.id))
     {
      // an error may carry "id": null (the request could not be read); the EA treats it as
      // an answer to the pending request
      if(!(r.type == "error" && j.TypeOf("id") == JSON_T_NULL))
         return ProtoReject(r, "id must be a string");
      r.id = "";
     }
   if(r.type == "verdict")
      return ProtoParseVerdict(j, r);
   if(r.type == "ack")
     {
      if(!ProtoOkTrue(j))
         return ProtoReject(r, "ack: ok must be true");
      r.kind = PROTO_REPLY_ACK;
      return true;
     }
   if(r.type == "error")
     {
      if(j.TypeOf("error") != JSON_T_OBJ || !j.GetString("error.code", r.error_code) || r.error_code == "")
         return ProtoReject(r, "error: error.code must be a non-empty string");
      if(!j.GetString("error.message", r.error_message))
         return ProtoReject(r, "error: error.message must be a string");
      r.kind = PROTO_REPLY_ERROR;
      return true;
     }
   return ProtoReject(r, "unknown reply type '" + r.type + "'");
  }

bool ProtoParseReply(const string text, ProtoReply &r)
  {
   CJsonFlat j;
   return ProtoParseReplyWith(j, text, r);
  }

#endif
