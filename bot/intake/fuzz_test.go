package intake

import (
	"testing"

	"github.com/shipbot/shipbot/bot/gitlabevent"
)

// FuzzNamedAgreesWithDecode: for any body the decoder accepts, the
// project the token is checked against is the project the inbox acts on.
// Were they to differ, a body could be admitted by one project's secret
// and act as another. Head.Decode itself refuses a body whose head and
// whole name different projects, so this fails when namedBy reads other
// than the head's project, or when that guard goes.
func FuzzNamedAgreesWithDecode(f *testing.F) {
	for _, c := range []struct{ event, body string }{
		{"Pipeline Hook", `{"object_kind":"pipeline","object_attributes":{"sha":"` + sha + `","status":"success"},"project":{"id":9,"path_with_namespace":"shop/web"}}`},
		{"Push Hook", `{"object_kind":"push","after":"` + sha + `","project_id":10,"project":{"id":9,"path_with_namespace":"shop/web"}}`},
		{"Note Hook", `{"object_kind":"note","project":{"ID":9,"path_with_namespace":"shop/web"},"Project":{"id":10}}`},
		{"Merge Request Hook", `{"object_kind":"merge_request","project":{"id":9,"path_with_namespace":"shop/web","id":10}}`},
	} {
		f.Add(c.event, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		head := gitlabevent.ReadHead(body)
		n := namedBy(head)
		ev, err := head.Decode(event)
		if err != nil {
			return
		}
		p := gitlabevent.ProjectOf(ev)
		if p.ID != n.ID || p.Path != n.Path {
			t.Fatalf("the token is checked for %+v, the inbox acts on %+v", n, p)
		}
	})
}

const sha = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
