package dingtalk

import "time"

// window allows at most limit sends in any span of length size: a sliding
// log of the last limit send times. A fixed "per minute" bucket would allow
// twice the limit across a minute boundary, which is exactly what gets a
// DingTalk robot banned.
type window struct {
	limit int
	size  time.Duration
	sent  []time.Time // oldest first, at most limit entries
}

// wait is how long until a send is allowed at now; 0 means now.
func (w *window) wait(now time.Time) time.Duration {
	if len(w.sent) < w.limit {
		return 0
	}
	// Strictly more than size since the oldest, so that even a closed
	// interval of length size holds at most limit sends.
	if d := w.sent[0].Add(w.size).Sub(now); d >= 0 {
		return d + time.Millisecond
	}
	return 0
}

// record notes a send at now; call it only when wait(now) is 0.
func (w *window) record(now time.Time) {
	if len(w.sent) == w.limit {
		w.sent = append(w.sent[:0], w.sent[1:]...)
	}
	w.sent = append(w.sent, now)
}
