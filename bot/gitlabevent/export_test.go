package gitlabevent

// ErrTwoProjects is Decode's refusal of a body whose head and whole name
// different projects.
var ErrTwoProjects = errTwoProjects

// DecodeClient is Decode up to the client's type, for the tests that hold
// it to gitlab.ParseWebhook.
func DecodeClient(header string, body []byte) (any, error) {
	h := ReadHead(body)
	if h.err != nil {
		return nil, h.err
	}
	return h.client(Kind(header))
}
