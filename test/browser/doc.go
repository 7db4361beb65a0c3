// Package browser tests shipbot's dashboard in a real headless Chromium,
// driven over the DevTools protocol by chromedp: a real shipbot (cmd/shipbot/serve.Main)
// on the local control plane of test/cluster, fed GitLab webhooks, and the
// pages as a person sees them.
//
// The test needs Debian's chromium (apt-get install chromium
// chromium-driver); SHIPBOT_CHROMIUM names another binary. Without one it
// skips, except under CI=true, where it fails. SHIPBOT_SCREENSHOT=1 writes
// the overview's screenshot to docs/img/dashboard.png for the README.
package browser
