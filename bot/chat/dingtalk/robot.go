// Package dingtalk posts release updates to a DingTalk (or Feishu) group
// through a custom robot, and serves the links on its buttons.
//
// A custom robot can only post: it cannot edit a message and it never learns
// who clicked. So every update is a new message, sent no faster than the
// robot's limit allows, and every button is a signed, single-use link to a
// confirmation page on shipbot. The page never acts on GET; its POST form
// acts, for the person an authenticating proxy in front of shipbot vouches
// for, through ops.Service like every other surface.
package dingtalk

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Flavor says which chat service a robot webhook belongs to.
type Flavor string

// Flavors. They differ in how requests are signed and messages encoded.
const (
	DingTalk Flavor = "dingtalk"
	Feishu   Flavor = "feishu"
)

// Message is one chat message: markdown text and, optionally, link buttons.
type Message struct {
	Title   string // shown in notifications and the chat list
	Text    string // markdown, in the subset both services render
	Buttons []Button
}

// Button opens URL in the reader's browser.
type Button struct {
	Title string
	URL   string
}

// Sender posts messages to one group. Robot implements it; tests fake it.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrRateLimited means the service refused a message for being over the
// robot's limit; DingTalk then refuses everything for about ten minutes.
var ErrRateLimited = errors.New("robot rate limit reached")

// APIError is the service refusing a message, e.g. for a bad signature or a
// missing keyword. Sending it again will not help.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("robot refused the message: code %d: %s", e.Code, e.Message)
}

// Robot is a custom group robot with the "sign" security setting.
type Robot struct {
	Flavor  Flavor       // DingTalk when empty
	Webhook string       // the robot's webhook URL; it holds the access token, so it is never logged
	Secret  string       // the signing secret (DingTalk: "SEC…"); requests go unsigned when empty
	HTTP    *http.Client // http.DefaultClient when nil
	Now     func() time.Time
}

var _ Sender = (*Robot)(nil)

// DingTalk and Feishu rate-limit answers.
const (
	dingTalkTooFast = 130101 // "send too fast, exceed 20 times per minute"
	feishuTooFast   = 11232  // "frequency limited"
)

// SignDingTalk is DingTalk's signature for a timestamp in milliseconds:
// base64(HMAC-SHA256(key=secret, msg=timestamp+"\n"+secret)), URL-encoded.
func SignDingTalk(timestampMillis int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestampMillis, 10) + "\n" + secret))
	return url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
}

// SignFeishu is Feishu's signature for a timestamp in seconds:
// base64(HMAC-SHA256(key=timestamp+"\n"+secret, msg="")).
func SignFeishu(timestampSeconds int64, secret string) string {
	mac := hmac.New(sha256.New, []byte(strconv.FormatInt(timestampSeconds, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Send posts m, signed, and checks the service's answer.
func (r *Robot) Send(ctx context.Context, m Message) error {
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	target, body, err := r.request(m, now)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("robot: bad webhook URL") // the URL holds the token: do not echo it
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	client := r.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return redact(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return ErrRateLimited
	case resp.StatusCode >= 500:
		return fmt.Errorf("robot: HTTP %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return &APIError{Code: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	}
	return r.answer(raw)
}

// redact drops the URL from a transport error: it carries the access token.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("robot: %s: %w", ue.Op, ue.Err)
	}
	return fmt.Errorf("robot: %w", err)
}

// request builds the signed URL and JSON body for m.
func (r *Robot) request(m Message, now time.Time) (string, []byte, error) {
	if r.Flavor == Feishu {
		msg := feishuMessage(m)
		if r.Secret != "" {
			ts := now.Unix()
			msg["timestamp"], msg["sign"] = strconv.FormatInt(ts, 10), SignFeishu(ts, r.Secret)
		}
		body, err := json.Marshal(msg)
		return r.Webhook, body, err
	}
	if r.Secret == "" {
		body, err := json.Marshal(dingTalkMessage(m))
		return r.Webhook, body, err
	}
	ts := now.UnixMilli()
	sep := "?"
	if u, err := url.Parse(r.Webhook); err == nil && u.RawQuery != "" {
		sep = "&"
	}
	target := r.Webhook + sep + "timestamp=" + strconv.FormatInt(ts, 10) + "&sign=" + SignDingTalk(ts, r.Secret)
	body, err := json.Marshal(dingTalkMessage(m))
	return target, body, err
}

// answer reads the service's JSON reply: DingTalk says {"errcode":0,...},
// Feishu {"code":0,...} or, on older endpoints, {"StatusCode":0,...}.
func (r *Robot) answer(raw []byte) error {
	var a struct {
		ErrCode    *int   `json:"errcode"`
		ErrMsg     string `json:"errmsg"`
		Code       *int   `json:"code"`
		Msg        string `json:"msg"`
		StatusCode *int   `json:"StatusCode"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return fmt.Errorf("robot: unreadable answer: %w", err)
	}
	code, msg := 0, ""
	switch {
	case a.ErrCode != nil:
		code, msg = *a.ErrCode, a.ErrMsg
	case a.Code != nil:
		code, msg = *a.Code, a.Msg
	case a.StatusCode != nil:
		code = *a.StatusCode
	default:
		return errors.New("robot: answer has no status code")
	}
	switch code {
	case 0:
		return nil
	case dingTalkTooFast, feishuTooFast:
		return fmt.Errorf("%w: %s", ErrRateLimited, msg)
	}
	return &APIError{Code: code, Message: msg}
}

// dingTalkMessage is an actionCard when there are buttons, else markdown.
func dingTalkMessage(m Message) any {
	if len(m.Buttons) == 0 {
		return map[string]any{"msgtype": "markdown", "markdown": map[string]string{"title": m.Title, "text": m.Text}}
	}
	btns := make([]map[string]string, len(m.Buttons))
	for i, b := range m.Buttons {
		btns[i] = map[string]string{"title": b.Title, "actionURL": b.URL}
	}
	return map[string]any{"msgtype": "actionCard", "actionCard": map[string]any{
		"title": m.Title, "text": m.Text, "btnOrientation": "0", "btns": btns,
	}}
}

// feishuMessage is an interactive card: a markdown element, then a row of buttons.
func feishuMessage(m Message) map[string]any {
	elements := []any{map[string]string{"tag": "markdown", "content": m.Text}}
	if len(m.Buttons) > 0 {
		actions := make([]any, len(m.Buttons))
		for i, b := range m.Buttons {
			actions[i] = map[string]any{
				"tag": "button", "type": "default", "url": b.URL,
				"text": map[string]string{"tag": "plain_text", "content": b.Title},
			}
		}
		elements = append(elements, map[string]any{"tag": "action", "actions": actions})
	}
	return map[string]any{
		"msg_type": "interactive",
		"card": map[string]any{
			"header":   map[string]any{"title": map[string]string{"tag": "plain_text", "content": m.Title}},
			"elements": elements,
		},
	}
}
