package gitlabevent_test

import (
	"errors"
	"testing"

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
