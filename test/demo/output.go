package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

func say(s string) { fmt.Println("==> " + s) }

// chapter starts a part of the story.
func chapter(title string) { fmt.Printf("\n=== %s\n\n", title) }

// indent prefixes each line of s.
func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+prefix)
}

// poll calls f every 200 ms until it says done or fails, for at most within.
func poll(ctx context.Context, within time.Duration, what string, f func() (bool, error)) error {
	deadline := time.Now().Add(within)
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", within, what)
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// prefixed writes each line of a subprocess's output with a tag.
func prefixed(tag string) io.Writer {
	r, w := io.Pipe()
	go func() {
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := r.Read(tmp)
			buf = append(buf, tmp[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				fmt.Printf("[%s] %s\n", tag, buf[:i])
				buf = buf[i+1:]
			}
			if err != nil {
				return
			}
		}
	}()
	return w
}
