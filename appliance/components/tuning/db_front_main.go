// db-manager's front: Katib's DBManager gRPC API (observation logs, keyed by trial name only, no
// authentication upstream) served in db-manager's pod, each call passed on to db-manager on loopback only
// when its caller may touch that trial. The caller is known by its address: the pod at that address (a
// running pod, not on the host network, found through the API server), whose namespace is either Katib's own
// (the controller: every trial) or must hold a Trial of that name (a trial's metrics collector, or any pod
// of that user: their own trials only). A pod cannot take another's address, so one user can neither read,
// write nor delete another's observation logs.
package main

import (
	"context"
	"flag"
	"math"
	"net"

	health "github.com/kubeflow/katib/pkg/apis/manager/health"
	api "github.com/kubeflow/katib/pkg/apis/manager/v1beta1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

var trials = schema.GroupVersionResource{Group: "kubeflow.org", Version: "v1beta1", Resource: "trials"}

type front struct {
	api.UnimplementedDBManagerServer
	db      api.DBManagerClient
	health  health.HealthClient
	pods    kubernetes.Interface
	objects dynamic.Interface
	katib   string // the namespace whose pods may use every trial's logs
}

// namespace: the namespace of the one running pod (not on the host network) at the caller's address.
func (f *front) namespace(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", status.Error(codes.PermissionDenied, "no caller address")
	}
	ip, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return "", status.Errorf(codes.PermissionDenied, "caller address %s: %v", p.Addr, err)
	}
	list, err := f.pods.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "status.podIP=" + ip})
	if err != nil {
		return "", status.Errorf(codes.Unavailable, "looking up the pod at %s: %v", ip, err)
	}
	found := ""
	for _, pod := range list.Items {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue // its address may already be another pod's
		}
		if pod.Spec.HostNetwork || (found != "" && found != pod.Namespace) {
			return "", status.Errorf(codes.PermissionDenied, "%s is not one pod's address", ip)
		}
		found = pod.Namespace
	}
	if found == "" {
		return "", status.Errorf(codes.PermissionDenied, "no running pod has address %s", ip)
	}
	return found, nil
}

// allow: nil when the caller may use trial `name`'s observation logs; refusals are logged.
func (f *front) allow(ctx context.Context, name string) error {
	err := f.check(ctx, name)
	if status.Code(err) == codes.PermissionDenied {
		from := "an unknown address"
		if p, ok := peer.FromContext(ctx); ok {
			from = p.Addr.String()
		}
		klog.Infof("refused %s: %v", from, err)
	}
	return err
}

func (f *front) check(ctx context.Context, name string) error {
	ns, err := f.namespace(ctx)
	if err != nil || ns == f.katib {
		return err
	}
	_, err = f.objects.Resource(trials).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return status.Errorf(codes.PermissionDenied, "observation logs of trial %q: no such trial in namespace %s, the caller's", name, ns)
	}
	if err != nil {
		return status.Errorf(codes.Unavailable, "looking up trial %s/%s: %v", ns, name, err)
	}
	return nil
}

func (f *front) ReportObservationLog(ctx context.Context, in *api.ReportObservationLogRequest) (*api.ReportObservationLogReply, error) {
	if err := f.allow(ctx, in.TrialName); err != nil {
		return nil, err
	}
	return f.db.ReportObservationLog(ctx, in)
}

func (f *front) GetObservationLog(ctx context.Context, in *api.GetObservationLogRequest) (*api.GetObservationLogReply, error) {
	if err := f.allow(ctx, in.TrialName); err != nil {
		return nil, err
	}
	return f.db.GetObservationLog(ctx, in)
}

func (f *front) DeleteObservationLog(ctx context.Context, in *api.DeleteObservationLogRequest) (*api.DeleteObservationLogReply, error) {
	if err := f.allow(ctx, in.TrialName); err != nil {
		return nil, err
	}
	return f.db.DeleteObservationLog(ctx, in)
}

// Check: db-manager's own health (it checks its database), for the probes.
func (f *front) Check(ctx context.Context, in *health.HealthCheckRequest) (*health.HealthCheckResponse, error) {
	return f.health.Check(ctx, in)
}

func main() {
	listen := flag.String("listen-address", "0.0.0.0:6789", "address to serve the DBManager API on")
	backend := flag.String("db-manager", "127.0.0.1:6790", "db-manager's address (loopback, in this pod)")
	katib := flag.String("katib-namespace", "katib", "the namespace whose pods may use every trial's observation logs")
	flag.Parse()
	cfg, err := rest.InClusterConfig()
	if err != nil {
		klog.Fatalf("in-cluster configuration: %v", err)
	}
	size := math.MaxInt32 // as db-manager's own limits
	conn, err := grpc.NewClient(*backend, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(size), grpc.MaxCallSendMsgSize(size)))
	if err != nil {
		klog.Fatalf("db-manager at %s: %v", *backend, err)
	}
	f := &front{db: api.NewDBManagerClient(conn), health: health.NewHealthClient(conn),
		pods: kubernetes.NewForConfigOrDie(cfg), objects: dynamic.NewForConfigOrDie(cfg), katib: *katib}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		klog.Fatalf("listen %s: %v", *listen, err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(size), grpc.MaxSendMsgSize(size))
	api.RegisterDBManagerServer(srv, f)
	health.RegisterHealthServer(srv, f)
	klog.Infof("db-manager's front on %s for %s (namespace %s trusted)", *listen, *backend, *katib)
	if err := srv.Serve(l); err != nil {
		klog.Fatalf("serve: %v", err)
	}
}
