// The goptuna suggestion service (Katib's library) on an address of our choosing: the simulator's host
// runtime runs one on loopback for every experiment (upstream's program listens on 0.0.0.0:6789 only).
package main

import (
	"context"
	"flag"
	"net"

	health "github.com/kubeflow/katib/pkg/apis/manager/health"
	api "github.com/kubeflow/katib/pkg/apis/manager/v1beta1"
	goptuna "github.com/kubeflow/katib/pkg/suggestion/v1beta1/goptuna"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"
)

type serving struct{}

func (serving) Check(context.Context, *health.HealthCheckRequest) (*health.HealthCheckResponse, error) {
	return &health.HealthCheckResponse{Status: health.HealthCheckResponse_SERVING}, nil
}

func main() {
	listen := flag.String("listen-address", "127.0.0.1:6789", "address to serve the Suggestion API on")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		klog.Fatalf("listen %s: %v", *listen, err)
	}
	srv := grpc.NewServer()
	api.RegisterSuggestionServer(srv, goptuna.NewSuggestionService())
	health.RegisterHealthServer(srv, serving{})
	klog.Infof("goptuna suggestion service on %s", *listen)
	if err := srv.Serve(l); err != nil {
		klog.Fatalf("serve: %v", err)
	}
}
