package command

// maxSuggest bounds the words suggest compares, and so its work.
const maxSuggest = 32

// aliases are words people plausibly type for a command that has a space in it.
var aliases = map[string]string{
	"preview-stop": "preview stop",
	"previewstop":  "preview stop",
	"preview_stop": "preview stop",
}

// suggest returns the command closest to a mistyped word: within one edit for
// words of up to four letters, two for longer ones.
func suggest(word string) (string, bool) {
	word = lowerASCII(word)
	if s, ok := aliases[word]; ok {
		return s, true
	}
	if len(word) > maxSuggest {
		return "", false
	}
	best, bestDist := "", 3
	for _, e := range commands {
		limit := 2
		if len(e.word) <= 4 {
			limit = 1
		}
		if d := distance(word, e.word); d <= limit && d < bestDist {
			best, bestDist = e.word, d
		}
	}
	return best, best != ""
}

// distance is the optimal string alignment distance between a and b, in
// bytes: insertions, deletions, substitutions and swaps of neighbours, the
// usual typing slips.
func distance(a, b string) int {
	// Three rows are enough: a swap looks back two rows.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
