package apiserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/lbkit/lbkit/backends/backendtest"
)

// bin holds the programs TestMain builds: the API server from this
// module, and lbkit's example node proxy.
var bin struct {
	apiserver, nodeproxy string
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	e2e := os.Getenv("LBKIT_E2E") == "1"
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"etcd", "ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		if e2e {
			fmt.Fprintf(os.Stderr, "LBKIT_E2E=1 but the API server tests cannot run: missing %s\n", strings.Join(missing, ", "))
			return 1
		}
		fmt.Printf("skipping the API server tests: missing %s (LBKIT_E2E=1 makes this a failure)\n", strings.Join(missing, ", "))
		return 0
	}
	dir, err := os.MkdirTemp("", "lbkit-apiserver-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin.apiserver = filepath.Join(dir, "kube-apiserver")
	bin.nodeproxy = filepath.Join(dir, "nodeproxy")
	// The node proxy is built in the library's own module (../..), with
	// its go.mod, as its users build it.
	for _, b := range []struct{ dir, out, pkg string }{
		{".", bin.apiserver, "./cmd/kube-apiserver"},
		{"../..", bin.nodeproxy, "./examples/nodeproxy"},
	} {
		start := time.Now()
		cmd := exec.Command("go", "build", "-C", b.dir, "-o", b.out, b.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
		fmt.Printf("built %s in %v\n", b.pkg, time.Since(start).Round(time.Second))
	}
	return m.Run()
}

// inNS runs f on a thread inside the named network namespace; sockets f
// creates belong to it.
func inNS(name string, f func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return f()
}

// nsDial dials from inside a namespace: the test reaches the API servers,
// which listen on the node namespace's loopback.
func nsDial(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNS(ns, func() error {
			var err error
			c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// process is a program running in the node namespace, with its output
// kept for failure messages.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs a program inside the node namespace of n until stop (or the
// end of the test).
func start(t *testing.T, n *backendtest.Network, name string, args ...string) *process {
	t.Helper()
	p := &process{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", n.NodeNS()}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	return p
}

// stop ends the process (SIGTERM, then SIGKILL) and waits for it.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
}

// keys writes a service-account signing key pair into dir.
func keys(t *testing.T, dir string) (private, public string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	private, public = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	write := func(path, typ string, der []byte) {
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(private, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(k))
	write(public, "PUBLIC KEY", pub)
	return private, public
}

// adminToken is the static token of the test's own, all-powerful user.
const adminToken = "lbkit-test-admin"

// controlPlane is etcd and one or two API servers in a Network's node
// namespace, all on its loopback.
type controlPlane struct {
	t       *testing.T
	n       *backendtest.Network
	dir     string
	etcd    *process
	servers map[int]*process // by secure port
}

const etcdClient = "http://127.0.0.1:23790"

func newControlPlane(t *testing.T, n *backendtest.Network) *controlPlane {
	t.Helper()
	cp := &controlPlane{t: t, n: n, dir: t.TempDir(), servers: map[int]*process{}}
	cp.etcd = start(t, n, "etcd", "etcd",
		"--data-dir", filepath.Join(cp.dir, "etcd"),
		"--listen-client-urls", etcdClient, "--advertise-client-urls", etcdClient,
		"--listen-peer-urls", "http://127.0.0.1:23800")
	if err := os.WriteFile(filepath.Join(cp.dir, "tokens.csv"), []byte(adminToken+",admin,admin,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys(t, cp.dir)
	return cp
}

// startAPIServer starts an API server on 127.0.0.1:port and waits until it
// is ready.
func (cp *controlPlane) startAPIServer(port int) {
	cp.t.Helper()
	p := start(cp.t, cp.n, fmt.Sprintf("kube-apiserver:%d", port), bin.apiserver,
		"--etcd-servers", etcdClient,
		"--bind-address", "127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--advertise-address", "127.0.0.1",
		// The endpoint reconciler refuses a loopback advertise address.
		"--endpoint-reconciler-type", "none",
		"--service-cluster-ip-range", cp.n.ServiceCIDR().String(),
		"--service-account-key-file", filepath.Join(cp.dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(cp.dir, "sa.key"),
		"--service-account-issuer", "https://lbkit.test",
		"--token-auth-file", filepath.Join(cp.dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--cert-dir", filepath.Join(cp.dir, fmt.Sprintf("certs-%d", port)),
		"--enable-priority-and-fairness=false")
	cp.servers[port] = p
	client := &http.Client{Transport: &http.Transport{
		DialContext:     nsDial(cp.n.NodeNS()),
		TLSClientConfig: insecureTLS(),
	}}
	waitFor(cp.t, 90*time.Second, p.name+" to be ready", func() error {
		if p.exited() {
			cp.t.Fatalf("%s exited:\n%s", p.name, tail(p.out.String()))
		}
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://127.0.0.1:%d/readyz", port), nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
}

func (cp *controlPlane) stopAPIServer(port int) { cp.servers[port].stop() }

// config is a client configuration for the API server on port.
func (cp *controlPlane) config(port int, token string) *rest.Config {
	return &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", port),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		Dial:            nsDial(cp.n.NodeNS()),
		QPS:             500,
		Burst:           1000,
	}
}

func (cp *controlPlane) admin(port int) kubernetes.Interface {
	c, err := kubernetes.NewForConfig(cp.config(port, adminToken))
	if err != nil {
		cp.t.Fatal(err)
	}
	return c
}

// kubeconfig writes a kubeconfig for the API server on port with token.
func (cp *controlPlane) kubeconfig(port int, token string) string {
	cp.t.Helper()
	path := filepath.Join(cp.dir, fmt.Sprintf("kubeconfig-%d", port))
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:%d
    insecure-skip-tls-verify: true
users:
- name: proxy
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: proxy}
current-context: test
`, port, token)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		cp.t.Fatal(err)
	}
	return path
}

// tail returns the last lines of a process's output.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
