package ipvs_test

import (
	"context"
	"fmt"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/lbkit/lbkit/backends/ipvs"
	"github.com/lbkit/lbkit/servicemap"
	"github.com/lbkit/lbkit/servicemaptest"
)

// A Snapshot carries no annotations: a proxy that honours the
// lbkit.io/ipvs-scheduler annotation keeps a small map from the Service
// informer it already runs, and hands it to the backend as
// Spec.SchedulerFor. Here the annotated Service gets least-connection,
// the other one the default, round robin.
func ExampleSpec_schedulerFor() {
	tcp80 := []v1.ServicePort{servicemaptest.Port("http", 80, v1.ProtocolTCP)}
	db := servicemaptest.Service("default", "db", "10.96.0.20", tcp80)
	db.Annotations = map[string]string{ipvs.SchedulerAnnotation: "lc"}
	web := servicemaptest.Service("default", "web", "10.96.0.10", tcp80)
	client := fake.NewClientset(db, web)

	var schedulers sync.Map // "namespace/name" -> scheduler
	remember := func(obj any) {
		svc, ok := obj.(*v1.Service)
		if !ok {
			return
		}
		if s := svc.Annotations[ipvs.SchedulerAnnotation]; s != "" {
			schedulers.Store(svc.Namespace+"/"+svc.Name, s)
		} else {
			schedulers.Delete(svc.Namespace + "/" + svc.Name)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services().Informer()
	reg, err := services.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    remember,
		UpdateFunc: func(_, obj any) { remember(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if svc, ok := obj.(*v1.Service); ok {
				schedulers.Delete(svc.Namespace + "/" + svc.Name)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	factory.Start(ctx.Done())
	// The handler, not only the informer's store, must have seen the
	// initial list.
	cache.WaitForCacheSync(ctx.Done(), reg.HasSynced)

	spec := ipvs.Spec{SchedulerFor: func(n servicemap.ServicePortName) string {
		s, _ := schedulers.Load(n.ServiceName())
		name, _ := s.(string)
		return name
	}}
	tr := servicemap.NewTracker(servicemap.Options{NodeName: "node-a"})
	tr.OnServiceAdd(db)
	tr.OnServiceAdd(web)
	for line := range strings.Lines(ipvs.Render(tr.Snapshot(), spec)) {
		if strings.HasPrefix(line, "-A ") {
			fmt.Print(line)
		}
	}
	// Output:
	// -A -t 10.96.0.10:80 -s rr
	// -A -t 10.96.0.20:80 -s lc
}
