package main

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// sampleYAML is the cluster lbctl shows when no files are named.
//
//go:embed sample.yaml
var sampleYAML []byte

// sampleName is how messages about the embedded sample name it.
const sampleName = "sample.yaml"

// stdinName is how messages about standard input name it.
const stdinName = "<stdin>"

// inputs holds the objects a proxy reads, in the order they were read and
// defaulted as the API server would have stored them (see defaults.go).
type inputs struct {
	Services []*v1.Service
	Slices   []*discoveryv1.EndpointSlice
	Nodes    []*v1.Node
	// ServiceCIDRs are networking.k8s.io/v1 ServiceCIDR objects: the
	// service ranges, for the nftables backend's drop of unallocated
	// addresses.
	ServiceCIDRs []*networkingv1.ServiceCIDR
	// Warnings name what was read but not used, e.g.
	// "file.yaml: document 3: kind ConfigMap ignored".
	Warnings []string
}

// load reads the named manifest files, "-" being standard input, or the
// embedded sample when files is empty. An object defined more than once
// (same kind, namespace and name) keeps its last definition, with a warning,
// as successive `kubectl apply` runs would.
func load(files []string) (*inputs, error) {
	return loadFrom(files, os.Stdin)
}

// loadFrom is load with standard input given.
func loadFrom(files []string, stdin io.Reader) (*inputs, error) {
	in := &inputs{}
	if len(files) == 0 {
		if err := loadDocuments(sampleName, sampleYAML, in); err != nil {
			return nil, err
		}
	}
	for _, file := range files {
		name := file
		var data []byte
		var err error
		if file == "-" {
			name = stdinName
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(file)
		}
		if err != nil {
			// A PathError already names the file: name it once.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := loadDocuments(name, data, in); err != nil {
			return nil, err
		}
	}
	in.dropRedefined()
	return in, nil
}

// loadDocuments decodes the YAML (or JSON) documents in data and appends the
// supported objects to into, defaulted. name is the file name used in errors
// and warnings. Documents are split as kubectl splits them (apimachinery's
// YAMLReader) and numbered from 1 as a reader counts objects: empty
// documents (nothing but comments and blank lines, or null) are skipped and
// not counted.
//
// Supported are v1 Service, discovery.k8s.io/v1 EndpointSlice and v1 Node,
// also as items of a v1 List (as `kubectl get -o yaml` writes) or of their
// typed lists. Other kinds and versions are ignored with a warning; unknown
// and duplicate fields are warned about. A document that cannot be decoded
// is an error, in which case into is left unchanged.
func loadDocuments(name string, data []byte, into *inputs) error {
	d := &documentDecoder{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	doc := 0
	for {
		raw, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", name, doc+1, err)
		}
		js, err := yaml.YAMLToJSON(raw)
		if err == nil && isEmptyJSON(js) {
			continue
		}
		doc++
		where := fmt.Sprintf("%s: document %d", name, doc)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := d.decode(where, raw, js); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	into.Services = append(into.Services, d.got.Services...)
	into.Slices = append(into.Slices, d.got.Slices...)
	into.Nodes = append(into.Nodes, d.got.Nodes...)
	into.Warnings = append(into.Warnings, d.got.Warnings...)
	return nil
}

func isEmptyJSON(js []byte) bool {
	js = bytes.TrimSpace(js)
	return len(js) == 0 || string(js) == "null"
}

var (
	serviceTypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	sliceTypeMeta   = metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"}
	nodeTypeMeta    = metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}
	cidrTypeMeta    = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "ServiceCIDR"}
)

// supportedKinds maps each kind lbctl reads, lists included, to the only
// version of it that it reads.
var supportedKinds = map[string]schema.GroupVersionKind{
	"Service":           v1.SchemeGroupVersion.WithKind("Service"),
	"EndpointSlice":     discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice"),
	"Node":              v1.SchemeGroupVersion.WithKind("Node"),
	"List":              v1.SchemeGroupVersion.WithKind("List"),
	"ServiceList":       v1.SchemeGroupVersion.WithKind("ServiceList"),
	"EndpointSliceList": discoveryv1.SchemeGroupVersion.WithKind("EndpointSliceList"),
	"NodeList":          v1.SchemeGroupVersion.WithKind("NodeList"),
	"ServiceCIDR":       networkingv1.SchemeGroupVersion.WithKind("ServiceCIDR"),
	"ServiceCIDRList":   networkingv1.SchemeGroupVersion.WithKind("ServiceCIDRList"),
}

// manifestDecoder decodes the supported kinds without converting or
// defaulting them. It is strict so that unknown and duplicate fields are
// reported; those reports become warnings. It is never modified.
var manifestDecoder = newManifestDecoder()

func newManifestDecoder() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1.AddToScheme, discoveryv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err) // registering the fixed API types cannot fail
		}
	}
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// documentDecoder collects the objects of one file, so that a bad document
// leaves the caller's inputs untouched.
type documentDecoder struct {
	got inputs
}

func (d *documentDecoder) warnf(format string, args ...any) {
	d.got.Warnings = append(d.got.Warnings, fmt.Sprintf(format, args...))
}

// decode decodes one non-empty document, given as written (YAML or JSON)
// and as JSON; where prefixes its warnings.
func (d *documentDecoder) decode(where string, data, js []byte) error {
	if js = bytes.TrimSpace(js); len(js) == 0 || js[0] != '{' {
		return errors.New("not a Kubernetes object: want a mapping with apiVersion and kind")
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return err
	}
	switch {
	case tm.Kind == "":
		return errors.New("kind is not set")
	case tm.APIVersion == "":
		return fmt.Errorf("apiVersion of kind %s is not set", tm.Kind)
	}
	gvk := tm.GroupVersionKind()
	want, ok := supportedKinds[gvk.Kind]
	if !ok {
		d.warnf("%s: kind %s ignored", where, gvk.Kind)
		return nil
	}
	if gvk != want {
		wantVersion, _ := want.ToAPIVersionAndKind()
		d.warnf("%s: kind %s ignored: apiVersion %s is not supported, only %s", where, gvk.Kind, tm.APIVersion, wantVersion)
		return nil
	}

	// Decoding what was written, not js, lets the strict decoder see
	// duplicate YAML keys.
	obj, _, err := manifestDecoder.Decode(data, nil, nil)
	if err != nil {
		strict, ok := runtime.AsStrictDecodingError(err)
		if !ok || obj == nil {
			return err
		}
		for _, e := range strict.Errors() {
			d.warnf("%s: %s", where, oneLine(e.Error()))
		}
	}
	return d.add(where, obj)
}

// oneLine joins the lines of a multi-line message, as the YAML decoder
// writes for duplicate keys.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}

// add appends a decoded object, defaulted, or the items of a decoded list.
func (d *documentDecoder) add(where string, obj runtime.Object) error {
	switch o := obj.(type) {
	case *v1.List:
		// Items may be of any kind, so each is decoded as a document.
		for i, item := range o.Items {
			if isEmptyJSON(item.Raw) {
				continue
			}
			if err := d.decode(fmt.Sprintf("%s: item %d", where, i+1), item.Raw, item.Raw); err != nil {
				return fmt.Errorf("item %d: %w", i+1, err)
			}
		}
		return nil
	case *v1.ServiceList:
		return addItems(d, o.Items)
	case *discoveryv1.EndpointSliceList:
		return addItems(d, o.Items)
	case *v1.NodeList:
		return addItems(d, o.Items)
	case *networkingv1.ServiceCIDRList:
		return addItems(d, o.Items)
	}

	// The API server would reject a nameless object, and lbctl finds
	// objects by name.
	if o, ok := obj.(metav1.Object); ok && o.GetName() == "" {
		return errors.New("metadata.name is not set")
	}
	// Items of typed lists come without apiVersion and kind; every object
	// gets them, so that all look alike.
	switch o := obj.(type) {
	case *v1.Service:
		o.TypeMeta = serviceTypeMeta
		defaultService(o)
		d.got.Services = append(d.got.Services, o)
	case *discoveryv1.EndpointSlice:
		o.TypeMeta = sliceTypeMeta
		defaultEndpointSlice(o)
		d.got.Slices = append(d.got.Slices, o)
	case *v1.Node:
		o.TypeMeta = nodeTypeMeta
		defaultNode(o)
		d.got.Nodes = append(d.got.Nodes, o)
	case *networkingv1.ServiceCIDR:
		o.TypeMeta = cidrTypeMeta
		d.got.ServiceCIDRs = append(d.got.ServiceCIDRs, o)
	default:
		return fmt.Errorf("decoded unexpected type %T", obj)
	}
	return nil
}

// addItems adds the items of a typed list, which have no kind of their own.
func addItems[T any, PT interface {
	*T
	runtime.Object
}](d *documentDecoder, items []T) error {
	for i := range items {
		if err := d.add("", PT(&items[i])); err != nil {
			return fmt.Errorf("item %d: %w", i+1, err)
		}
	}
	return nil
}

// dropRedefined keeps only the last definition of each object, in the
// position of that definition, and warns about the others.
func (in *inputs) dropRedefined() {
	in.Services = lastDefinitions(in.Services, "Service", &in.Warnings)
	in.Slices = lastDefinitions(in.Slices, "EndpointSlice", &in.Warnings)
	in.Nodes = lastDefinitions(in.Nodes, "Node", &in.Warnings)
	in.ServiceCIDRs = lastDefinitions(in.ServiceCIDRs, "ServiceCIDR", &in.Warnings)
}

// namedObject is what lastDefinitions needs of an object.
type namedObject interface {
	GetNamespace() string
	GetName() string
}

func lastDefinitions[T namedObject](objs []T, kind string, warnings *[]string) []T {
	type key struct{ namespace, name string }
	last := make(map[key]int, len(objs))
	for i, o := range objs {
		last[key{o.GetNamespace(), o.GetName()}] = i
	}
	if len(last) == len(objs) {
		return objs
	}
	kept := objs[:0]
	warned := map[key]bool{}
	for i, o := range objs {
		k := key{o.GetNamespace(), o.GetName()}
		if last[k] == i {
			kept = append(kept, o)
			continue
		}
		if !warned[k] {
			warned[k] = true
			id := k.name
			if k.namespace != "" {
				id = k.namespace + "/" + k.name
			}
			*warnings = append(*warnings, fmt.Sprintf("%s %s is defined more than once; the last definition is used", kind, id))
		}
	}
	clear(objs[len(kept):])
	return kept
}
