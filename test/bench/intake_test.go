package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shipbot/shipbot/bot/intake"
	"github.com/shipbot/shipbot/deployer/store"
)

const (
	// secret is the X-Gitlab-Token the senders and the intake share.
	secret = "bench-secret"
	// maxBody is the config's default intake.maxBodyBytes.
	maxBody = 5 << 20
)

// ingest drives one level against a fresh intake, then checks that the
// inbox on disk holds exactly the deliveries sent.
func ingest(ctx context.Context, path string, l level, body []byte) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, levelTimeout)
	defer cancel()
	in, err := startIntake(ctx, path)
	if err != nil {
		return result{}, err
	}
	s := newSender(in.url, body, l.senders)
	res, err := l.run(ctx, s.post)
	s.client.CloseIdleConnections()
	if err := errors.Join(err, in.close(ctx)); err != nil {
		return result{}, err
	}
	return res, checkInbox(path, l.total())
}

// intakeServer is shipbot's webhook endpoint wired as cmd/shipbot/serve wires it, without
// the inbox worker and the clusters: Echo with Recover, the handler and a
// bbolt store with fsync on, served by net/http on loopback.
type intakeServer struct {
	store  *store.Store
	srv    *http.Server
	url    string
	served chan error
}

func startIntake(ctx context.Context, path string) (*intakeServer, error) {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return nil, err
	}
	in, err := serveIntake(ctx, st, maxBody)
	if err != nil {
		return nil, errors.Join(err, st.Close())
	}
	in.store = st
	return in, nil
}

// serveIntake serves the webhook endpoint on loopback, storing into inbox.
func serveIntake(ctx context.Context, inbox intake.Inbox, maxBody int64) (*intakeServer, error) {
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	intake.NewHandler(intake.Handler{Secret: secret, MaxBody: maxBody, Inbox: inbox, Log: slog.New(slog.DiscardHandler)}, prometheus.NewRegistry()).Register(e)
	in := &intakeServer{srv: &http.Server{Handler: e}, url: "http://" + ln.Addr().String() + intake.Path, served: make(chan error, 1)}
	go func() { in.served <- in.srv.Serve(ln) }()
	return in, nil
}

// close stops serving and closes the store, so its file can be reopened.
func (in *intakeServer) close(ctx context.Context) error {
	err := in.srv.Shutdown(ctx)
	if served := <-in.served; !errors.Is(served, http.ErrServerClosed) {
		err = errors.Join(err, served)
	}
	if in.store != nil {
		err = errors.Join(err, in.store.Close())
	}
	return err
}

// checkInbox reopens the store file and counts what it holds.
func checkInbox(path string, want int) error {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	pending, err := st.Pending(want + 1)
	if err != nil {
		return err
	}
	if len(pending) != want {
		return fmt.Errorf("inbox holds %d deliveries, %d were acknowledged", len(pending), want)
	}
	return nil
}

// sender posts one pipeline body over a keep-alive transport with an idle
// connection kept for every concurrent sender.
type sender struct {
	client *http.Client
	url    string
	body   []byte
}

func newSender(url string, body []byte, conns int) *sender {
	t := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	return &sender{client: &http.Client{Transport: t, Timeout: 10 * time.Second}, url: url, body: body}
}

// post sends one delivery and checks that shipbot stored it as new.
func (s *sender) post(ctx context.Context, uuid string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(s.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gitlab-Event", "Pipeline Hook")
	req.Header.Set("X-Gitlab-Token", secret)
	req.Header.Set("X-Gitlab-Event-UUID", uuid)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(reply, []byte(`"status":"accepted"`)) {
		return fmt.Errorf("delivery %s: %s: %s", uuid, resp.Status, reply)
	}
	return nil
}
