package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// auditPolicy logs every request at the Metadata level (who, verb, object;
// no bodies). Each request is logged once it is answered, and a watch or
// other long-running request once its answer starts, so that each request
// is one line however long it lasts.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`

func (c *Cluster) auditLog() string { return filepath.Join(c.dir, "audit.log") }

// auditArgs writes the audit policy and returns the apiserver flags that
// turn the log on. The log backend writes each event before the request
// goes on (mode blocking), so that a request answered is a line written.
func (c *Cluster) auditArgs() ([]string, error) {
	policy := filepath.Join(c.dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, fmt.Errorf("audit policy: %w", err)
	}
	return []string{"--audit-policy-file=" + policy, "--audit-log-path=" + c.auditLog(),
		"--audit-log-mode=blocking", "--audit-log-format=json", "--audit-log-maxsize=0"}, nil
}

// AuditRequest is one request in the apiserver's audit log.
type AuditRequest struct {
	User      string
	Verb      string // get, list, watch, create, update, patch, delete, ...
	Resource  string // e.g. deployments, virtualservices; "" for non-resource URLs
	Namespace string
	Name      string
	URI       string
	Code      int32 // the response's status code
	At        time.Time
}

// auditEvent holds the fields of an audit.k8s.io/v1 Event that AuditRequests reads.
type auditEvent struct {
	Stage      string `json:"stage"`
	RequestURI string `json:"requestURI"`
	Verb       string `json:"verb"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource  string `json:"resource"`
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int32 `json:"code"`
	} `json:"responseStatus"`
	StageTimestamp time.Time `json:"stageTimestamp"`
}

// AuditRequests returns the requests user made, in the order the apiserver
// logged them, from a cluster started with Options.Audit. A watch counts
// once, when it starts.
func (c *Cluster) AuditRequests(user string) ([]AuditRequest, error) {
	if !c.audit {
		return nil, errors.New("audit log: the cluster was started without Options.Audit")
	}
	f, err := os.Open(c.auditLog())
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	var out []AuditRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log line %d: %w", n, err)
		}
		// A long-running request is logged when its answer starts, and again
		// when it ends; every other request once, when it is answered.
		if e.User.Username != user || (e.Stage != "ResponseStarted" && e.Stage != "ResponseComplete" && e.Stage != "Panic") {
			continue
		}
		if e.Stage == "ResponseComplete" && e.Verb == "watch" {
			continue
		}
		r := AuditRequest{User: e.User.Username, Verb: e.Verb, URI: e.RequestURI, At: e.StageTimestamp}
		if e.ObjectRef != nil {
			r.Resource, r.Namespace, r.Name = e.ObjectRef.Resource, e.ObjectRef.Namespace, e.ObjectRef.Name
		}
		if e.ResponseStatus != nil {
			r.Code = e.ResponseStatus.Code
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}

// KubeconfigFor writes a kubeconfig whose client certificate names user, in
// group system:masters, and returns its path. The apiserver lets it do
// anything, as the admin kubeconfig, but its requests carry user's name, so
// that AuditRequests can tell them from the test's own.
func (c *Cluster) KubeconfigFor(user string) (string, error) {
	certPEM, keyPEM, err := c.pki.ca.sign(clientTemplate(user, "system:masters"))
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: c.cfg.Host, CertificateAuthorityData: c.pki.caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "local"
	path := filepath.Join(c.dir, "kubeconfig-"+user)
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("write kubeconfig for %s: %w", user, err)
	}
	return path, nil
}
