//go:build linux

package main

import (
	"io"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
)

// clientset connects to a cluster, or serves a file's objects through a
// fake clientset.
func clientset(kubeconfig, fakeFile string) (kubernetes.Interface, error) {
	if fakeFile == "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, err
		}
		return kubernetes.NewForConfig(cfg)
	}
	f, err := os.Open(fakeFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var objs []runtime.Object
	docs := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var raw runtime.RawExtension
		if err := docs.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		if len(raw.Raw) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
	return fake.NewClientset(objs...), nil
}
