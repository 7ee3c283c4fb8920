//+------------------------------------------------------------------+
//| Transport.mqh -- one request/reply interface, two transports:     |
//|  * CZmqTransport: ZeroMQ REQ through libzmq.dll (works in the     |
//|    Strategy Tester on local agents with "Allow DLL imports").     |
//|    Send/receive timeouts, linger 0, immediate; after a timeout or |
//|    failed send the socket is closed and reopened (Lazy Pirate),   |
//|    so a lost reply can never wedge the REQ state machine.         |
//|  * CHttpTransport: POST <base>/v1/<type> through WebRequest (live |
//|    charts only: WebRequest is not executed in the tester). The    |
//|    trailing NUL of StringToCharArray is removed.                  |
//| The token goes in the JSON "token" field over ZeroMQ (the EA asks |
//| the Protocol module for it) and as "Authorization: Bearer" here.  |
//| Each request carries its own timeout (a hello with 500 bars and a |
//| calendar push need longer than a tick; the Strategy Tester waits  |
//| in lock-step with a long bound).                                  |
//| MQL5-only file (#import, WebRequest, dynamic arrays).             |
//+------------------------------------------------------------------+
#ifndef SIDECAR_TRANSPORT_MQH
#define SIDECAR_TRANSPORT_MQH

#include "Log.mqh"

#define TR_OK          0   // reply text available
#define TR_TIMEOUT     1   // no reply within the timeout (socket recycled)
#define TR_SEND_FAILED 2   // could not send (no peer, DLL/WebRequest error)
#define TR_NOT_READY   3   // transport could not be opened
#define TR_TOO_LARGE   4   // reply larger than the receive buffer
#define TR_HTTP_STATUS 5   // HTTP status other than 200 without a body

#define SC_ZMQ_REQ               3
#define SC_ZMQ_LINGER            17
#define SC_ZMQ_RECONNECT_IVL     18
#define SC_ZMQ_RECONNECT_IVL_MAX 21
#define SC_ZMQ_RCVTIMEO          27
#define SC_ZMQ_SNDTIMEO          28
#define SC_ZMQ_IMMEDIATE         39

#define SC_ZMQ_RECV_BUFFER 262144

#import "libzmq.dll"
long zmq_ctx_new(void);
int  zmq_ctx_term(long context);
long zmq_socket(long context, int type);
int  zmq_close(long socket);
int  zmq_connect(long socket, const uchar &endpoint[]);
int  zmq_setsockopt(long socket, int option, const int &optval, ulong optvallen);
int  zmq_send(long socket, const uchar &buf[], ulong len, int flags);
int  zmq_recv(long socket, uchar &buf[], ulong len, int flags);
int  zmq_errno(void);
#import

string TransportResultName(const int rc)
  {
   switch(rc)
     {
      case TR_OK:
         return "OK";
      case TR_TIMEOUT:
         return "TIMEOUT";
      case TR_SEND_FAILED:
         return "SEND_FAILED";
      case TR_NOT_READY:
         return "NOT_READY";
      case TR_TOO_LARGE:
         return "TOO_LARGE";
      case TR_HTTP_STATUS:
         return "HTTP_STATUS";
     }
   return "UNKNOWN";
  }

//+------------------------------------------------------------------+
class CTransport
  {
protected:
   string            m_token;
   int               m_timeout_ms;
   string            m_last_error;

public:
                     CTransport(void) : m_token(""), m_timeout_ms(200), m_last_error("") {}
   virtual          ~CTransport(void) {}
   virtual string    Name(void) const = 0;
   // true when the token travels in the JSON body (ZeroMQ) rather than in a header (HTTP)
   virtual bool      TokenInBody(void) const = 0;
   virtual bool      Open(void) = 0;
   virtual void      Close(void) = 0;
   // Sends one request and waits up to timeout_ms for its reply (<= 0: the transport's default);
   // returns TR_*.
   virtual int       Request(const string type, const string json, string &reply, const int timeout_ms) = 0;
   int               DefaultTimeout(void) const { return m_timeout_ms; }
   string            LastError(void) const { return m_last_error; }
   string            Token(void) const { return m_token; }
  };

//+------------------------------------------------------------------+
class CZmqTransport : public CTransport
  {
private:
   string            m_endpoint;
   long              m_ctx;
   long              m_sock;
   int               m_sock_timeout;   // RCVTIMEO / SNDTIMEO set on the current socket
   uchar             m_buf[];

   bool              SetInt(const int option, const int value, const string name)
     {
      int v = value;
      if(zmq_setsockopt(m_sock, option, v, sizeof(int)) == 0)
         return true;
      m_last_error = "zmq_setsockopt " + name + " errno=" + IntegerToString(zmq_errno());
      return false;
     }

   void              CloseSocket(void)
     {
      if(m_sock != 0)
        {
         zmq_close(m_sock);
         m_sock = 0;
        }
     }

   bool              OpenSocket(void)
     {
      CloseSocket();
      m_sock = zmq_socket(m_ctx, SC_ZMQ_REQ);
      if(m_sock == 0)
        {
         m_last_error = "zmq_socket errno=" + IntegerToString(zmq_errno());
         return false;
        }
      m_sock_timeout = m_timeout_ms;
      bool ok = SetInt(SC_ZMQ_LINGER, 0, "LINGER") &&
                SetInt(SC_ZMQ_IMMEDIATE, 1, "IMMEDIATE") &&
                SetInt(SC_ZMQ_RCVTIMEO, m_timeout_ms, "RCVTIMEO") &&
                SetInt(SC_ZMQ_SNDTIMEO, m_timeout_ms, "SNDTIMEO") &&
                SetInt(SC_ZMQ_RECONNECT_IVL, 100, "RECONNECT_IVL") &&
                SetInt(SC_ZMQ_RECONNECT_IVL_MAX, 2000, "RECONNECT_IVL_MAX");
      if(ok)
        {
         uchar ep[];
         StringToCharArray(m_endpoint, ep, 0, WHOLE_ARRAY, CP_UTF8);   // NUL-terminated, as zmq_connect wants
         if(zmq_connect(m_sock, ep) != 0)
           {
            m_last_error = "zmq_connect " + m_endpoint + " errno=" + IntegerToString(zmq_errno());
            ok = false;
           }
        }
      if(!ok)
         CloseSocket();
      return ok;
     }

public:
                     CZmqTransport(const string endpoint, const int timeout_ms, const string token)
     {
      m_endpoint = endpoint;
      m_timeout_ms = timeout_ms;
      m_token = token;
      m_ctx = 0;
      m_sock = 0;
      m_sock_timeout = timeout_ms;
      ArrayResize(m_buf, SC_ZMQ_RECV_BUFFER);
     }
   virtual string    Name(void) const { return "zmq " + m_endpoint; }
   virtual bool      TokenInBody(void) const { return true; }

   virtual bool      Open(void)
     {
      if(m_ctx == 0)
         m_ctx = zmq_ctx_new();
      if(m_ctx == 0)
        {
         m_last_error = "zmq_ctx_new failed errno=" + IntegerToString(zmq_errno());
         return false;
        }
      return OpenSocket();
     }

   virtual void      Close(void)
     {
      CloseSocket();
      if(m_ctx != 0)
        {
         zmq_ctx_term(m_ctx);    // returns at once: every socket is closed with linger 0
         m_ctx = 0;
        }
     }

                    ~CZmqTransport(void) { Close(); }

   virtual int       Request(const string type, const string json, string &reply, const int timeout_ms)
     {
      reply = "";
      if(m_sock == 0 && !Open())
         return TR_NOT_READY;
      int wait_ms = timeout_ms > 0 ? timeout_ms : m_timeout_ms;
      if(wait_ms != m_sock_timeout)
        {
         // options set on a connected socket apply to its next send / receive
         if(!SetInt(SC_ZMQ_RCVTIMEO, wait_ms, "RCVTIMEO") || !SetInt(SC_ZMQ_SNDTIMEO, wait_ms, "SNDTIMEO"))
           {
            OpenSocket();
            return TR_SEND_FAILED;
           }
         m_sock_timeout = wait_ms;
        }
      uchar body[];
      int n = StringToCharArray(json, body, 0, WHOLE_ARRAY, CP_UTF8);
      int len = n > 0 ? n - 1 : 0;                                     // drop the trailing NUL
      if(zmq_send(m_sock, body, (ulong)len, 0) < 0)
        {
         m_last_error = "zmq_send " + type + " errno=" + IntegerToString(zmq_errno());
         OpenSocket();                                                 // Lazy Pirate: fresh socket
         return TR_SEND_FAILED;
        }
      int got = zmq_recv(m_sock, m_buf, (ulong)ArraySize(m_buf), 0);
      if(got < 0)
        {
         m_last_error = "zmq_recv " + type + " errno=" + IntegerToString(zmq_errno()) + " after " +
                        IntegerToString(wait_ms) + " ms";
         OpenSocket();                                                 // Lazy Pirate: fresh socket
         return TR_TIMEOUT;
        }
      if(got > ArraySize(m_buf))
        {
         m_last_error = "reply of " + IntegerToString(got) + " bytes exceeds the buffer";
         return TR_TOO_LARGE;                                          // the REQ cycle completed
        }
      // an empty frame stays empty (the buffer still holds the previous reply's bytes)
      reply = got > 0 ? CharArrayToString(m_buf, 0, got, CP_UTF8) : "";
      return TR_OK;
     }
  };

//+------------------------------------------------------------------+
class CHttpTransport : public CTransport
  {
private:
   string            m_base;

public:
                     CHttpTransport(const string base_url, const int timeout_ms, const string token)
     {
      m_base = base_url;
      while(StringLen(m_base) > 0 && StringSubstr(m_base, StringLen(m_base) - 1) == "/")
         m_base = ScSubstr(m_base, 0, StringLen(m_base) - 1);
      m_timeout_ms = timeout_ms;
      m_token = token;
     }
   virtual string    Name(void) const { return "http " + m_base; }
   virtual bool      TokenInBody(void) const { return false; }
   virtual bool      Open(void) { return true; }
   virtual void      Close(void) {}

   virtual int       Request(const string type, const string json, string &reply, const int timeout_ms)
     {
      reply = "";
      int wait_ms = timeout_ms > 0 ? timeout_ms : m_timeout_ms;
      string url = m_base + "/v1/" + type;
      string headers = "Content-Type: application/json\r\n";
      if(m_token != "")
         headers += "Authorization: Bearer " + m_token + "\r\n";
      char body[];
      int n = StringToCharArray(json, body, 0, WHOLE_ARRAY, CP_UTF8);
      if(n > 0)
         ArrayResize(body, n - 1);                                     // drop the trailing NUL
      char result[];
      string result_headers = "";
      ResetLastError();
      int status = WebRequest("POST", url, headers, wait_ms, body, result, result_headers);
      if(status == -1)
        {
         int err = GetLastError();
         string why = "";
         switch(err)
           {
            case 5200:
               why = "invalid URL";
               break;
            case 5201:
               why = "connection failed";
               break;
            case 5202:
               why = "timeout";
               break;
            case 5203:
               why = "HTTP request failed";
               break;
            case 4014:
               why = "WebRequest not allowed: add the URL under Tools > Options > Expert Advisors";
               break;
            default:
               why = "error";
           }
         m_last_error = "WebRequest " + url + " failed: " + IntegerToString(err) + " " + why;
         return err == 5202 ? TR_TIMEOUT : TR_SEND_FAILED;
        }
      reply = CharArrayToString(result, 0, WHOLE_ARRAY, CP_UTF8);
      if(status != 200 && reply == "")
        {
         m_last_error = "HTTP " + IntegerToString(status) + " from " + url;
         return TR_HTTP_STATUS;
        }
      return TR_OK;   // a 4xx/5xx body is an error reply; the Protocol module reads it
     }
  };

#endif
