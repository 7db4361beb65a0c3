package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serviceIP is the first address of the service range, the in-cluster apiserver address.
const serviceIP = "10.96.0.1"

// pki holds the paths and client credentials of one cluster's certificates.
type pki struct {
	caCert, caKey           string // cluster CA, also the client CA and the CSR signer
	servingCert, servingKey string // kube-apiserver's serving certificate
	saKey, saPub            string // service-account token signing key pair
	caPEM                   []byte
	adminCertPEM            []byte // O=system:masters client certificate for the kubeconfig
	adminKeyPEM             []byte
	ca                      *issuer // signs further client certificates (KubeconfigFor)
}

// issuer is a CA that signs leaf certificates.
type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// writePKI creates a fresh CA, the apiserver's serving certificate, an admin client
// certificate and the service-account key pair in dir.
func writePKI(dir string) (*pki, error) {
	p := &pki{
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "apiserver.crt"), servingKey: filepath.Join(dir, "apiserver.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
	}
	ca, caKeyPEM, err := newCA()
	if err != nil {
		return nil, err
	}
	p.caPEM, p.ca = pemBlock("CERTIFICATE", ca.cert.Raw), ca
	servingPEM, servingKeyPEM, err := ca.sign(servingTemplate())
	if err != nil {
		return nil, err
	}
	p.adminCertPEM, p.adminKeyPEM, err = ca.sign(clientTemplate("shipbot-admin", "system:masters"))
	if err != nil {
		return nil, err
	}
	saKeyPEM, saPubPEM, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		p.caCert: p.caPEM, p.caKey: caKeyPEM,
		p.servingCert: servingPEM, p.servingKey: servingKeyPEM,
		p.saKey: saKeyPEM, p.saPub: saPubPEM,
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", filepath.Base(path), err)
		}
	}
	return p, nil
}

func newCA() (*issuer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := baseTemplate(pkix.Name{CommonName: "shipbot-test-ca"})
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	keyPEM, err := privateKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return &issuer{cert: cert, key: key}, keyPEM, nil
}

// sign issues a certificate for tmpl with a new key and returns both as PEM.
func (ca *issuer) sign(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key for %s: %w", tmpl.Subject.CommonName, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate for %s: %w", tmpl.Subject.CommonName, err)
	}
	keyPEM, err = privateKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), keyPEM, nil
}

func servingTemplate() *x509.Certificate {
	t := baseTemplate(pkix.Name{CommonName: "kube-apiserver"})
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	t.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.ParseIP(serviceIP)}
	t.DNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local"}
	return t
}

func clientTemplate(user, group string) *x509.Certificate {
	t := baseTemplate(pkix.Name{CommonName: user, Organization: []string{group}})
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return t
}

// baseTemplate is valid for a year so that a long `make demo` session never outlives it.
func baseTemplate(subject pkix.Name) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour), // tolerate small clock differences
		NotAfter:     now.Add(365 * 24 * time.Hour),
	}
}

func newKeyPair() (keyPEM, pubPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate service-account key: %w", err)
	}
	keyPEM, err = privateKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode service-account public key: %w", err)
	}
	return keyPEM, pemBlock("PUBLIC KEY", pub), nil
}

func privateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
