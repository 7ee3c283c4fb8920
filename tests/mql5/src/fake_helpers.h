// Helpers shared by the drivers that run MQL5 code against the terminal fake (terminal_fake.h,
// force-included before the translated sources).
#ifndef SIDECAR_FAKE_HELPERS_H
#define SIDECAR_FAKE_HELPERS_H

static const ulong FAKE_MAGIC = 20251218;

inline void Result(const string &json) { std::cout << "RESULT " << json << "\n"; }

inline string B(bool v) { return v ? "true" : "false"; }
inline string N(double v)
{
   char buf[64];
   std::snprintf(buf, sizeof(buf), "%.10g", v);
   return string(buf);
}

inline int Sends() { return (int)g_fk.sends.size(); }

inline int SendsFor(ENUM_TRADE_REQUEST_ACTIONS action)
{
   int n = 0;
   for(const FakeSend &s : g_fk.sends)
      if(s.request.action == action)
         n++;
   return n;
}

inline string ServerPositions()
{
   string out = "[";
   for(size_t i = 0; i < g_fk.srv_positions.size(); i++)
   {
      const FakePosition &p = g_fk.srv_positions[i];
      out += (i ? "," : "") + string("{\"ticket\":") + IntegerToString((long)p.ticket) + ",\"type\":\"" +
             (p.type == POSITION_TYPE_BUY ? "buy" : "sell") + "\",\"volume\":" + N(p.volume) + ",\"sl\":" + N(p.sl) + "}";
   }
   return out + "]";
}

inline long Now() { return g_fk.now; }

// A buy of `volume` lots with a 30-pip stop and a 60-pip target.
inline int OpenBuy(CExecutor &ex, double volume, const string &signal, double &filled, ulong &position)
{
   double ask = g_fk.Sym("EURUSD").ask;
   return ex.Open(true, volume, ask - 0.0030, ask + 0.0060, signal, Now(), filled, position);
}

inline void Setup(long margin_mode, int pos_delay, int deal_delay)
{
   g_fk = FakeTerminal();
   g_fk.margin_mode = margin_mode;
   g_fk.pos_delay = pos_delay;
   g_fk.deal_delay = deal_delay;
   g_fk.Sym("EURUSD");
}

// A position opened on the server and visible in the terminal, with a stop.
inline ulong SeedPosition(double volume, double sl)
{
   int keep_pos = g_fk.pos_delay;
   int keep_deal = g_fk.deal_delay;
   g_fk.pos_delay = 0;
   g_fk.deal_delay = 0;
   MqlTradeRequest rq;
   MqlTradeResult rs;
   ZeroMemory(rq);
   rq.action = TRADE_ACTION_DEAL;
   rq.symbol = "EURUSD";
   rq.volume = volume;
   rq.type = ORDER_TYPE_BUY;
   rq.sl = sl;
   rq.magic = FAKE_MAGIC;
   rq.comment = "sc:seed";
   OrderSend(rq, rs);
   g_fk.sends.clear();
   g_fk.pos_delay = keep_pos;
   g_fk.deal_delay = keep_deal;
   return rs.order;
}

#endif
