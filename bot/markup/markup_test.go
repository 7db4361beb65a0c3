package markup_test

import (
	"bytes"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"

	"github.com/shipbot/shipbot/bot/markup"
)

// render is a CommonMark renderer with GitHub's extensions (tables,
// strikethrough, autolinks, task lists), the dialect GitLab and DingTalk
// follow most closely.
func render(t *testing.T, md string) string {
	t.Helper()
	var out bytes.Buffer
	if err := goldmark.New(goldmark.WithExtensions(extension.GFM)).Convert([]byte(md), &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// hostile is text a person or a repository controls: a rollback reason, a
// ref, a gate's error, a .shipbot.yaml line.
var hostile = []string{
	"[click me](https://evil.example/steal)",
	"![x](https://evil.example/pixel.png)",
	"**bold** _em_ ~~gone~~ `code`",
	"<a href=\"https://evil.example\">hi</a><script>alert(1)</script>",
	"line one\n# heading\n> quote\n- item\n```\nfence",
	"@all please look at #12 and !3 and ~bug and $4",
	"a | table | row\n|---|---|",
	"back\\slash\\[escaped]\\(x)",
	"[ref]\n\n[ref]: https://evil.example",
	"&lt;b&gt; &amp; &#x3C;",
}

// bareLink is an autolinked URL: the reader sees the address it goes to,
// as they would in GitLab, so it may stay.
var bareLink = regexp.MustCompile(`<a href="([^"]*)">([^<]*)</a>`)

var markupTag = regexp.MustCompile(`<(a|img|strong|em|del|code|h[1-6]|blockquote|ul|ol|li|pre|table|script|br)\b`)

func TestMarkdownShowsTextAsWritten(t *testing.T) {
	for _, s := range hostile {
		got := bareLink.ReplaceAllStringFunc(render(t, "Reason: "+markup.Markdown(s)), func(a string) string {
			if m := bareLink.FindStringSubmatch(a); m[1] == m[2] {
				return m[2]
			}
			return a
		})
		if tag := markupTag.FindString(got); tag != "" {
			t.Errorf("Markdown(%q) rendered %s:\n%s", s, tag, got)
		}
		text := strings.TrimSuffix(strings.TrimPrefix(got, "<p>Reason: "), "</p>\n")
		want := strings.NewReplacer("\r\n", " ", "\n", " ").Replace(s)
		if html.UnescapeString(text) != want {
			t.Errorf("Markdown(%q) shows %q, want %q", s, html.UnescapeString(text), want)
		}
	}
}

// GitLab turns @name, #1, !1, ~label and $1 into mentions and references
// unless the character is escaped; no CommonMark renderer knows these, so
// the test asks that each is escaped.
func TestMarkdownEscapesGitLabReferences(t *testing.T) {
	got := markup.Markdown("@all #12 !3 ~bug $4")
	if want := `\@all \#12 \!3 \~bug \$4`; got != want {
		t.Errorf("Markdown = %q, want %q", got, want)
	}
}

func TestCodeCannotBeLeft(t *testing.T) {
	for _, s := range append(hostile, "`", "``tick``", " padded ", "a`b``c") {
		got := render(t, "x "+markup.Code(s)+" y")
		open := strings.Count(got, "<code>")
		if open != 1 || strings.Count(got, "</code>") != 1 {
			t.Errorf("Code(%q) rendered %d code spans:\n%s", s, open, got)
			continue
		}
		inner := got[strings.Index(got, "<code>")+len("<code>") : strings.Index(got, "</code>")]
		want := strings.NewReplacer("\r\n", " ", "\n", " ").Replace(s)
		if html.UnescapeString(inner) != want {
			t.Errorf("Code(%q) shows %q", s, html.UnescapeString(inner))
		}
		if strings.Contains(strings.Replace(got, inner, "", 1), "<a") {
			t.Errorf("Code(%q) let a link out:\n%s", s, got)
		}
	}
}

func TestBlockCannotBeLeft(t *testing.T) {
	for _, s := range append(hostile, "```\n# out\n```", "````") {
		got := render(t, markup.Block(s)+"\n\nafter")
		if n := strings.Count(got, "<pre>"); n != 1 {
			t.Errorf("Block(%q) rendered %d blocks:\n%s", s, n, got)
		}
		if tag := markupTag.FindString(strings.NewReplacer("<pre>", "", "<code>", "").Replace(got)); tag != "" {
			t.Errorf("Block(%q) rendered %s outside its block:\n%s", s, tag, got)
		}
		if !strings.HasSuffix(got, "</code></pre>\n<p>after</p>\n") {
			t.Errorf("Block(%q) did not end where it should:\n%s", s, got)
		}
	}
}

func TestSlack(t *testing.T) {
	got := markup.Slack("<https://evil.example|click> & <!channel> <@U123>")
	if strings.ContainsAny(got, "<>") {
		t.Errorf("Slack left a control character: %q", got)
	}
	if want := "&lt;https://evil.example|click&gt; &amp; &lt;!channel&gt; &lt;@U123&gt;"; got != want {
		t.Errorf("Slack = %q, want %q", got, want)
	}
}
