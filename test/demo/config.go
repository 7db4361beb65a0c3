package main

import "fmt"

// Secrets of the demo's shipbot; they guard nothing outside loopback.
const (
	secret      = "demo-webhook-secret"
	gitlabToken = "demo-gitlab-token"
	apiToken    = "demo-api-token-0123456789abcdef0123"
)

// Where the app runs.
const (
	devNamespace  = "demo-dev"
	prodNamespace = "demo-prod"
	previewPrefix = "demo-preview-"
	app           = "web" // also the VirtualService shipbot creates and splits
)

// config is shipbot.yaml for the story: dev deploys from branch dev, every
// merge request gets a preview, and tags go to prod by an Istio canary that
// pauses for a person at 10 % and at 50 %.
func (d *demo) config() string {
	return fmt.Sprintf(`# Written by make demo.
listen: %[1]s
publicURL: http://%[1]s
log: {level: info, format: text}
gitlab:
  baseURL: %[2]s   # the demo's fake GitLab API
  token: %[3]s
  webhookSecret: %[4]s
api: {token: %[5]s}
dashboard: {access: open}
store:
  path: %[6]s/shipbot.db
clusters:
  - name: local
    kubeconfig: %[7]s
environments:
  - name: dev
    clusters: [local]
    namespace: %[8]s
    refs: {branches: ['^dev$']}
  - name: preview
    clusters: [local]
    refs: {mergeRequests: true}
  - name: prod
    clusters: [local]
    namespace: %[9]s
    refs: {tags: ['^v\d+\.\d+\.\d+$']}
previews:
  domain: preview.example.com
  namespacePrefix: %[10]s
apps:
  - name: %[11]s
    project: %[12]s
    registry: registry.example.com
    params:
      replicas: 3
      ports: [{name: http, port: 8080}]
      resources: {cpuRequest: 50m, memoryRequest: 64Mi}
    release: {strategy: canary, steps: [10, 50, 100], pauseAfter: [10, 50]}
    environments:
      dev: {host: web.dev.example.com}
      preview: {}
      prod: {host: web.example.com}
`, d.o.listen, d.gitlab.URL(), gitlabToken, secret, apiToken, d.dir, d.cluster.KubeconfigPath(),
		devNamespace, prodNamespace, previewPrefix, app, project)
}
