package gitlabevent_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"github.com/shipbot/shipbot/bot/gitlabevent"
	"github.com/shipbot/shipbot/test/fixtures"
)

func TestDecodeGitLabExamples(t *testing.T) {
	cases := []struct {
		header, file string
		check        func(t *testing.T, e gitlabevent.Event)
	}{
		{"Push Hook", "push.json", func(t *testing.T, e gitlabevent.Event) {
			p := e.(*gitlabevent.Push)
			if p.Branch != "master" || p.Project.Path != "mike/diaspora" || p.SHA != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" || p.Deleted {
				t.Errorf("push = %+v", p)
			}
		}},
		{"Tag Push Hook", "tag_push.json", func(t *testing.T, e gitlabevent.Event) {
			p := e.(*gitlabevent.TagPush)
			if p.Tag == "" || p.SHA == "" || p.Project.Path == "" {
				t.Errorf("tag push = %+v", p)
			}
		}},
		{"Merge Request Hook", "merge_request.json", func(t *testing.T, e gitlabevent.Event) {
			mr := e.(*gitlabevent.MergeRequest)
			if mr.IID == 0 || mr.SourceBranch == "" || mr.HeadSHA == "" || mr.Action == "" {
				t.Errorf("merge request = %+v", mr)
			}
		}},
		{"Note Hook", "note_merge_request.json", func(t *testing.T, e gitlabevent.Event) {
			n := e.(*gitlabevent.Note)
			if n.MergeRequest == nil || n.MergeRequest.IID == 0 || n.Body == "" || n.User.Username == "" {
				t.Errorf("note = %+v", n)
			}
		}},
		{"Pipeline Hook", "pipeline.json", func(t *testing.T, e gitlabevent.Event) {
			p := e.(*gitlabevent.Pipeline)
			if p.ID != 31 || p.Status != "success" || p.Ref != "master" || len(p.Jobs) != 5 || p.User.Username != "user1" || p.MergeRequest == nil {
				t.Errorf("pipeline = %+v", p)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			body := fixtures.Marshal(t, fixtures.Load(t, c.file))
			e, err := gitlabevent.Decode(c.header, body)
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Kind()) != c.header {
				t.Errorf("kind = %q", e.Kind())
			}
			c.check(t, e)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := gitlabevent.Decode("Wiki Page Hook", []byte(`{}`)); !errors.Is(err, gitlabevent.ErrUnsupported) {
		t.Errorf("wiki page: %v, want ErrUnsupported", err)
	}
	if _, err := gitlabevent.Decode("Pipeline Hook", []byte(`{"object_kind":`)); !errors.Is(err, gitlabevent.ErrMalformed) {
		t.Errorf("truncated: %v, want ErrMalformed", err)
	}
	issueNote := fixtures.Marshal(t, fixtures.Load(t, "note_issue.json"))
	if _, err := gitlabevent.Decode("Note Hook", issueNote); !errors.Is(err, gitlabevent.ErrUnsupported) {
		t.Errorf("issue note: %v, want ErrUnsupported", err)
	}
}

// The head is read before the sender's token is checked, so any body
// reaches the decoder. These bodies, one after another, made goccy/go-json
// v0.10.5 (tried for the decoder) read past its buffer, goccy/go-json#604
// and #575: here a panic; built with -race, a fatal error that no recover
// catches. A regression guard for whichever decoder is used.
func TestReadHeadSurvivesMalformedBodies(t *testing.T) {
	bodies := []string{`{"\`, `{"project":{"\q":1}}`, `{"\u`, `{"a\`, `{"object_kind\`,
		`{"project":{"path_with_namespace\`, `{"\0":1}`, "{\"ab\\x"}
	for range 200 {
		for _, b := range bodies {
			if _, err := gitlabevent.ReadHead([]byte(b)).Decode(string(gitlabevent.KindPipeline)); !errors.Is(err, gitlabevent.ErrMalformed) {
				t.Fatalf("%q: %v, want ErrMalformed", b, err)
			}
		}
	}
}

// GitLab adds kinds of comments over time (designs, wiki pages, work
// items...). One shipbot has no use for is ignored, not refused: a refusal
// is a 4xx, and GitLab disables a hook that keeps failing.
func TestDecodeIgnoresCommentsOnOtherKinds(t *testing.T) {
	for _, kind := range []any{"DesignManagement::Design", "WikiPage::Meta", "Vulnerability"} {
		note := fixtures.Load(t, "note_merge_request.json")
		note["object_attributes"].(map[string]any)["noteable_type"] = kind
		if _, err := gitlabevent.Decode("Note Hook", fixtures.Marshal(t, note)); !errors.Is(err, gitlabevent.ErrUnsupported) {
			t.Errorf("a comment on a %v: %v, want ErrUnsupported", kind, err)
		}
	}
	for _, kind := range []any{nil, "", 7} {
		note := fixtures.Load(t, "note_merge_request.json")
		note["object_attributes"].(map[string]any)["noteable_type"] = kind
		if _, err := gitlabevent.Decode("Note Hook", fixtures.Marshal(t, note)); !errors.Is(err, gitlabevent.ErrMalformed) {
			t.Errorf("a comment whose noteable_type is %#v: %v, want ErrMalformed", kind, err)
		}
	}
}

func TestDeletedBranch(t *testing.T) {
	m := fixtures.Load(t, "push.json")
	fixtures.Set(m, "after", "0000000000000000000000000000000000000000")
	e, err := gitlabevent.Decode("Push Hook", fixtures.Marshal(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if !e.(*gitlabevent.Push).Deleted {
		t.Error("a push with a zero after-sha is a branch deletion")
	}
}

func FuzzDecode(f *testing.F) {
	for _, h := range []string{"Push Hook", "Tag Push Hook", "Merge Request Hook", "Note Hook", "Pipeline Hook"} {
		f.Add(h, []byte(`{"object_kind":"push","ref":"refs/heads/dev"}`))
	}
	f.Add("Note Hook", []byte(`{"object_kind":"note","object_attributes":{"noteable_type":"MergeRequest"}}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		e, err := gitlabevent.Decode(header, body)
		if err == nil && e == nil {
			t.Fatal("nil event without an error")
		}
		if err != nil && !errors.Is(err, gitlabevent.ErrUnsupported) && !errors.Is(err, gitlabevent.ErrMalformed) {
			t.Fatalf("error of unknown kind: %v", err)
		}
	})
}

// A body is taken for what its object_kind says, not only its header: a
// push body under a Pipeline Hook header would otherwise decode as a
// pipeline with zero values.
func TestDecodeRefusesAMismatchedObjectKind(t *testing.T) {
	for _, c := range []struct{ header, file string }{
		{"Pipeline Hook", "push.json"},
		{"Push Hook", "pipeline.json"},
		{"Tag Push Hook", "push.json"},
		{"Note Hook", "merge_request.json"},
	} {
		body := fixtures.Marshal(t, fixtures.Load(t, c.file))
		if _, err := gitlabevent.Decode(c.header, body); !errors.Is(err, gitlabevent.ErrMalformed) || !strings.Contains(err.Error(), "object_kind") {
			t.Errorf("%s under %s: %v, want ErrMalformed naming object_kind", c.file, c.header, err)
		}
	}
}

// A pipeline or tag without a full commit id would release an image
// tagged with nothing ("…/web:"): it is refused.
func TestDecodeRefusesAShortSHA(t *testing.T) {
	for _, c := range []struct{ header, file, path, sha string }{
		{"Pipeline Hook", "pipeline.json", "object_attributes.sha", ""},
		{"Pipeline Hook", "pipeline.json", "object_attributes.sha", "bcbb5ec3"},
		{"Pipeline Hook", "pipeline.json", "object_attributes.sha", strings.Repeat("g", 40)},
		{"Tag Push Hook", "tag_push.json", "checkout_sha", "82b3d5ae"},
		{"Push Hook", "push.json", "after", ""},
	} {
		m := fixtures.Load(t, c.file)
		fixtures.Set(m, c.path, c.sha)
		if c.header == "Tag Push Hook" {
			fixtures.Set(m, "after", c.sha)
		}
		if _, err := gitlabevent.Decode(c.header, fixtures.Marshal(t, m)); !errors.Is(err, gitlabevent.ErrMalformed) {
			t.Errorf("%s with %s %q: %v, want ErrMalformed", c.header, c.path, c.sha, err)
		}
	}
}

// clientExamples are the client's examples of the events shipbot acts on.
var clientExamples = []struct{ header, file string }{
	{"Push Hook", "push.json"},
	{"Tag Push Hook", "tag_push.json"},
	{"Merge Request Hook", "merge_request.json"},
	{"Merge Request Hook", "group_merge_request.json"},
	{"Merge Request Hook", "service_merge_request.json"},
	{"Note Hook", "note_merge_request.json"},
	{"Note Hook", "note_commit.json"},
	{"Pipeline Hook", "pipeline.json"},
}

// The examples GitLab's client ships decode to exactly what the client's
// own parser makes of them: the faster decoder changes no field.
func TestDecodeAgreesWithTheClientOnItsExamples(t *testing.T) {
	for _, c := range clientExamples {
		t.Run(c.file, func(t *testing.T) {
			body := fixtures.Bytes(t, c.file)
			want, err := gitlab.ParseWebhook(gitlab.EventType(c.header), body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gitlabevent.DecodeClient(c.header, body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decoded as\n%+v\nthe client's parser made\n%+v", got, want)
			}
		})
	}
}

// FuzzDecodeAgreesWithTheClient: whatever body the client's parser
// (encoding/json) takes, shipbot's decoder takes too, and reads the same,
// keys in any case and invalid UTF-8 included.
func FuzzDecodeAgreesWithTheClient(f *testing.F) {
	for _, c := range clientExamples {
		f.Add(c.header, fixtures.Bytes(f, c.file))
	}
	f.Add("Pipeline Hook", []byte(`{"object_kind":"pipeline","Project":{"ID":9},"project":{"path_with_namespace":"a"},"builds":[{"id":1},{"id":2}]}`))
	f.Add("Push Hook", []byte(`{"object_kind":"push","object_attributes":1,"project":{"id":9}}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		if !gitlabevent.Supported(header) {
			return
		}
		want, err := gitlab.ParseWebhook(gitlab.EventType(header), body)
		if err != nil {
			return
		}
		switch want.(type) {
		case *gitlab.IssueCommentEvent, *gitlab.SnippetCommentEvent:
			return
		}
		got, err := gitlabevent.DecodeClient(header, body)
		if err != nil {
			t.Fatalf("the client's parser takes the body, shipbot's refuses it: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded as\n%+v\nthe client's parser made\n%+v", got, want)
		}
		// Decode's guard, that the head and the whole name one project,
		// never refuses a body the client reads.
		if _, err := gitlabevent.ReadHead(body).Decode(header); errors.Is(err, gitlabevent.ErrTwoProjects) {
			t.Fatalf("the client's parser takes the body, Decode says it names two projects: %v", err)
		}
	})
}

// BenchmarkDecode is the CPU of one pipeline body, head and full decode,
// against the client's own parse, and against what the intake did before:
// the head read with encoding/json, then the client's parse.
func BenchmarkDecode(b *testing.B) {
	body := fixtures.Bytes(b, "pipeline.json")
	b.Run("before", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var head struct {
				ObjectKind string `json:"object_kind"`
				Project    struct {
					ID   int64  `json:"id"`
					Path string `json:"path_with_namespace"`
				} `json:"project"`
			}
			if err := json.Unmarshal(body, &head); err != nil {
				b.Fatal(err)
			}
			if _, err := gitlab.ParseWebhook(gitlab.EventTypePipeline, body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("shipbot", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := gitlabevent.ReadHead(body).Decode(string(gitlabevent.KindPipeline)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := gitlab.ParseWebhook(gitlab.EventTypePipeline, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
