package hook_test

import (
	"errors"
	"testing"

	"github.com/shipbot/shipbot/bot/hook"
	"github.com/shipbot/shipbot/test/fixtures"
)

func TestDecodeGitLabExamples(t *testing.T) {
	cases := []struct {
		header, file string
		check        func(t *testing.T, e hook.Event)
	}{
		{"Push Hook", "push.json", func(t *testing.T, e hook.Event) {
			p := e.(*hook.Push)
			if p.Branch != "master" || p.Project.Path != "mike/diaspora" || p.SHA != "da1560886d4f094c3e6c9ef40349f7d38b5d27d7" || p.Deleted {
				t.Errorf("push = %+v", p)
			}
		}},
		{"Tag Push Hook", "tag_push.json", func(t *testing.T, e hook.Event) {
			p := e.(*hook.TagPush)
			if p.Tag == "" || p.SHA == "" || p.Project.Path == "" {
				t.Errorf("tag push = %+v", p)
			}
		}},
		{"Merge Request Hook", "merge_request.json", func(t *testing.T, e hook.Event) {
			mr := e.(*hook.MergeRequest)
			if mr.IID == 0 || mr.SourceBranch == "" || mr.HeadSHA == "" || mr.Action == "" {
				t.Errorf("merge request = %+v", mr)
			}
		}},
		{"Note Hook", "note_merge_request.json", func(t *testing.T, e hook.Event) {
			n := e.(*hook.Note)
			if n.MergeRequest == nil || n.MergeRequest.IID == 0 || n.Body == "" || n.User.Username == "" {
				t.Errorf("note = %+v", n)
			}
		}},
		{"Pipeline Hook", "pipeline.json", func(t *testing.T, e hook.Event) {
			p := e.(*hook.Pipeline)
			if p.ID != 31 || p.Status != "success" || p.Ref != "master" || len(p.Jobs) != 5 || p.User.Username != "user1" || p.MergeRequest == nil {
				t.Errorf("pipeline = %+v", p)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			body := fixtures.Marshal(t, fixtures.Load(t, c.file))
			e, err := hook.Decode(c.header, body)
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
	if _, err := hook.Decode("Wiki Page Hook", []byte(`{}`)); !errors.Is(err, hook.ErrUnsupported) {
		t.Errorf("wiki page: %v, want ErrUnsupported", err)
	}
	if _, err := hook.Decode("Pipeline Hook", []byte(`{"object_kind":`)); !errors.Is(err, hook.ErrMalformed) {
		t.Errorf("truncated: %v, want ErrMalformed", err)
	}
	issueNote := fixtures.Marshal(t, fixtures.Load(t, "note_issue.json"))
	if _, err := hook.Decode("Note Hook", issueNote); !errors.Is(err, hook.ErrUnsupported) {
		t.Errorf("issue note: %v, want ErrUnsupported", err)
	}
}

func TestDeletedBranch(t *testing.T) {
	m := fixtures.Load(t, "push.json")
	fixtures.Set(m, "after", "0000000000000000000000000000000000000000")
	e, err := hook.Decode("Push Hook", fixtures.Marshal(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if !e.(*hook.Push).Deleted {
		t.Error("a push with a zero after-sha is a branch deletion")
	}
}

func FuzzDecode(f *testing.F) {
	for _, h := range []string{"Push Hook", "Tag Push Hook", "Merge Request Hook", "Note Hook", "Pipeline Hook"} {
		f.Add(h, []byte(`{"object_kind":"push","ref":"refs/heads/dev"}`))
	}
	f.Add("Note Hook", []byte(`{"object_kind":"note","object_attributes":{"noteable_type":"MergeRequest"}}`))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		e, err := hook.Decode(header, body)
		if err == nil && e == nil {
			t.Fatal("nil event without an error")
		}
		if err != nil && !errors.Is(err, hook.ErrUnsupported) && !errors.Is(err, hook.ErrMalformed) {
			t.Fatalf("error of unknown kind: %v", err)
		}
	})
}
