package slack

import (
	"context"
	"errors"
	"log/slog"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// SocketMode receives interactions and the slash command over a WebSocket
// that shipbot opens to Slack with the app token: no public URL needed.
// Each interaction's envelope is acked at once, then dispatched like an
// HTTP click; a slash command's is acked with its reply.
type SocketMode struct {
	client *socketmode.Client
	d      *dispatcher
	log    *slog.Logger
}

func newSocketMode(api *slack.Client, d *dispatcher, log *slog.Logger) *SocketMode {
	client := socketmode.New(api, socketmode.OptionLog(slog.NewLogLogger(log.Handler(), slog.LevelDebug)))
	return &SocketMode{client: client, d: d, log: log}
}

// Run holds the connection, reconnecting as Slack asks, until ctx ends.
func (s *SocketMode) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.loop(ctx)
	}()
	err := s.client.RunContext(ctx)
	cancel()
	<-done
	if errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *SocketMode) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-s.client.Events:
			s.handle(ctx, evt)
		}
	}
}

// handle acks an envelope before anything else, so Slack never redelivers a
// click because shipbot was slow, then dispatches interactions. A slash
// command is acked with its reply instead, within actBudget.
func (s *SocketMode) handle(ctx context.Context, evt socketmode.Event) {
	if evt.Type == socketmode.EventTypeSlashCommand {
		s.slash(ctx, evt)
		return
	}
	if evt.Request != nil && evt.Request.EnvelopeID != "" {
		if err := s.client.Ack(*evt.Request); err != nil {
			s.log.Warn("slack: ack socket mode envelope", "type", evt.Type, "err", err)
		}
	}
	switch evt.Type {
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			s.log.Warn("slack: interactive envelope without a callback")
			return
		}
		s.d.dispatch(ctx, cb)
	case socketmode.EventTypeConnected:
		s.log.Info("slack: socket mode connected")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth, socketmode.EventTypeIncomingError:
		s.log.Warn("slack: socket mode", "event", evt.Type, "detail", evt.Data)
	}
}

// slash runs a slash command and acks its envelope with the reply, which
// Slack shows only to the person who typed it.
func (s *SocketMode) slash(ctx context.Context, evt socketmode.Event) {
	if evt.Request == nil || evt.Request.EnvelopeID == "" {
		s.log.Warn("slack: slash command without an envelope")
		return
	}
	text := slashUsage
	if sc, ok := evt.Data.(slack.SlashCommand); ok && sc.UserID != "" {
		text = s.d.slash(ctx, slashCommand{userID: sc.UserID, text: sc.Text})
	} else {
		s.log.Warn("slack: slash command envelope without a command")
	}
	if err := s.client.Ack(*evt.Request, ephemeral(text)); err != nil {
		s.log.Warn("slack: ack slash command", "err", err)
	}
}
