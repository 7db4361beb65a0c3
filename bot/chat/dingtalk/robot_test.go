package dingtalk

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// The vectors were computed with Python's hmac, hashlib, base64 and
// urllib.parse.quote_plus from the formulas in DingTalk's and Feishu's docs.
func TestSignVectors(t *testing.T) {
	if got, want := SignDingTalk(1577836800000, "SEC0123456789abcdef"), "VIkrYXpqM66nY2agvTap17lAqEfAZw77OqD62%2BMh1G0%3D"; got != want {
		t.Errorf("SignDingTalk = %s, want %s", got, want)
	}
	if got, want := SignFeishu(1599360473, "demo-secret"), "3/MaVZ8JLIy4TUG+7KSFJqvUkTKd+HWY8g+56DZWq8s="; got != want {
		t.Errorf("SignFeishu = %s, want %s", got, want)
	}
}

// dingTalkServer is a fake robot endpoint that checks signatures the way
// DingTalk documents them and records what it was sent.
type dingTalkServer struct {
	*httptest.Server
	t      *testing.T
	secret string
	got    chan map[string]any

	mu     sync.Mutex
	answer func(w http.ResponseWriter, body map[string]any)
}

func (s *dingTalkServer) setAnswer(f func(w http.ResponseWriter, body map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answer = f
}

func newDingTalkServer(t *testing.T, secret string) *dingTalkServer {
	s := &dingTalkServer{t: t, secret: secret, got: make(chan map[string]any, 1000)}
	s.answer = func(w http.ResponseWriter, _ map[string]any) { io.WriteString(w, `{"errcode":0,"errmsg":"ok"}`) }
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *dingTalkServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	mac := hmac.New(sha256.New, []byte(s.secret))
	mac.Write([]byte(q.Get("timestamp") + "\n" + s.secret))
	// Query() has already URL-decoded sign once.
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); q.Get("sign") != want || q.Get("access_token") != "tok" {
		io.WriteString(w, `{"errcode":310000,"errmsg":"sign not match"}`)
		return
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		s.t.Errorf("robot body: %v", err)
	}
	s.got <- body
	s.mu.Lock()
	answer := s.answer
	s.mu.Unlock()
	answer(w, body)
}

func (s *dingTalkServer) robot(now func() time.Time) *Robot {
	return &Robot{Webhook: s.URL + "/robot/send?access_token=tok", Secret: s.secret, Now: now}
}

func TestRobotSendsSignedActionCard(t *testing.T) {
	srv := newDingTalkServer(t, "SECsecret")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := srv.robot(func() time.Time { return now })
	m := Message{Title: "web prod: Paused", Text: "### web", Buttons: []Button{{Title: "Continue", URL: "https://shipbot.example/chat/actions/x"}}}
	if err := r.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	body := <-srv.got
	card, _ := body["actionCard"].(map[string]any)
	btns, _ := card["btns"].([]any)
	if body["msgtype"] != "actionCard" || card["text"] != "### web" || len(btns) != 1 ||
		btns[0].(map[string]any)["actionURL"] != "https://shipbot.example/chat/actions/x" {
		t.Errorf("sent %v", body)
	}
	if err := r.Send(t.Context(), Message{Title: "t", Text: "done"}); err != nil {
		t.Fatal(err)
	}
	if body := <-srv.got; body["msgtype"] != "markdown" {
		t.Errorf("without buttons: %v", body)
	}
}

func TestRobotSurfacesRefusals(t *testing.T) {
	srv := newDingTalkServer(t, "SECsecret")
	r := srv.robot(time.Now)
	cases := []struct {
		name   string
		answer string
		status int
		check  func(error) bool
	}{
		{"keyword", `{"errcode":310000,"errmsg":"keywords not in content"}`, 200, func(err error) bool {
			var api *APIError
			return errors.As(err, &api) && api.Code == 310000 && strings.Contains(err.Error(), "keywords not in content")
		}},
		{"too fast", `{"errcode":130101,"errmsg":"send too fast"}`, 200, func(err error) bool { return errors.Is(err, ErrRateLimited) }},
		{"429", ``, 429, func(err error) bool { return errors.Is(err, ErrRateLimited) }},
		{"5xx", `oops`, 502, func(err error) bool {
			var api *APIError
			return err != nil && !errors.As(err, &api) && !errors.Is(err, ErrRateLimited)
		}},
	}
	for _, c := range cases {
		srv.setAnswer(func(w http.ResponseWriter, _ map[string]any) {
			w.WriteHeader(c.status)
			io.WriteString(w, c.answer)
		})
		err := r.Send(t.Context(), Message{Title: "t", Text: "x"})
		if !c.check(err) {
			t.Errorf("%s: %v", c.name, err)
		}
		<-srv.got
	}
	wrong := &Robot{Webhook: srv.URL + "/robot/send?access_token=tok", Secret: "SECother"}
	if err := wrong.Send(t.Context(), Message{Text: "x"}); err == nil || !strings.Contains(err.Error(), "sign not match") {
		t.Errorf("wrong secret: %v", err)
	}
}

func TestRobotErrorsHideTheAccessToken(t *testing.T) {
	r := &Robot{Webhook: "http://127.0.0.1:1/robot/send?access_token=very-secret", Secret: "s"}
	err := r.Send(t.Context(), Message{Text: "x"})
	if err == nil || strings.Contains(err.Error(), "very-secret") {
		t.Errorf("error %v", err)
	}
}

func TestFeishuRobotSignsTheBody(t *testing.T) {
	now := time.Unix(1599360473, 0)
	got := make(chan map[string]any, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		got <- body
		io.WriteString(w, `{"code":0,"msg":"success","data":{}}`)
	}))
	defer srv.Close()
	r := &Robot{Flavor: Feishu, Webhook: srv.URL + "/open-apis/bot/v2/hook/x", Secret: "demo-secret", Now: func() time.Time { return now }}
	if err := r.Send(t.Context(), Message{Title: "t", Text: "**x**", Buttons: []Button{{Title: "Pause", URL: "https://s/x"}}}); err != nil {
		t.Fatal(err)
	}
	body := <-got
	if body["timestamp"] != "1599360473" || body["sign"] != "3/MaVZ8JLIy4TUG+7KSFJqvUkTKd+HWY8g+56DZWq8s=" || body["msg_type"] != "interactive" {
		t.Errorf("feishu body %v", body)
	}
	raw, _ := json.Marshal(body["card"])
	if !strings.Contains(string(raw), `"url":"https://s/x"`) {
		t.Errorf("feishu card %s", raw)
	}
	srvErr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`)
	}))
	defer srvErr.Close()
	r.Webhook = srvErr.URL
	var api *APIError
	if err := r.Send(t.Context(), Message{Text: "x"}); !errors.As(err, &api) || api.Code != 19021 {
		t.Errorf("feishu refusal: %v", err)
	}
}

func TestWebhookWithoutQueryGetsSignatureParameters(t *testing.T) {
	r := &Robot{Webhook: "https://oapi.dingtalk.com/robot/send", Secret: "s"}
	target, _, err := r.request(Message{Text: "x"}, time.UnixMilli(1000))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(target)
	if u.Query().Get("timestamp") != "1000" || u.Query().Get("sign") == "" {
		t.Errorf("target %s", target)
	}
}
