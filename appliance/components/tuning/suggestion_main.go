// The goptuna suggestion service (Katib's library) on an address of our choosing: the simulator's host
// runtime runs one on loopback for every experiment (upstream's program listens on 0.0.0.0:6789 only, and
// upstream runs one per experiment).
package main

import (
	"context"
	"flag"
	"net"
	"sync"

	health "github.com/kubeflow/katib/pkg/apis/manager/health"
	api "github.com/kubeflow/katib/pkg/apis/manager/v1beta1"
	goptuna "github.com/kubeflow/katib/pkg/suggestion/v1beta1/goptuna"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

type serving struct{}

func (serving) Check(context.Context, *health.HealthCheckRequest) (*health.HealthCheckResponse, error) {
	return &health.HealthCheckResponse{Status: health.HealthCheckResponse_SERVING}, nil
}

// studies keeps a goptuna service (its study and search space) per experiment, as upstream's Deployment per
// experiment does. Experiments are told apart by the address Katib dialled, <experiment>-<algorithm>.<namespace>:6789
// (the call's :authority): the request names the experiment but not its namespace.
type studies struct {
	mu     sync.Mutex
	byAddr map[string]*goptuna.SuggestionService
}

func (s *studies) GetSuggestions(ctx context.Context, req *api.GetSuggestionsRequest) (*api.GetSuggestionsReply, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	addr := md.Get(":authority")
	if len(addr) != 1 {
		return nil, status.Error(codes.InvalidArgument, "no :authority: the experiment's suggestion address is unknown")
	}
	s.mu.Lock()
	svc := s.byAddr[addr[0]]
	// An experiment's first request (nothing suggested before it) starts a new study, also where an experiment
	// of the same name and namespace was deleted and made again.
	if svc == nil || req.GetCurrentRequestNumber() == req.GetTotalRequestNumber() {
		svc = goptuna.NewSuggestionService()
		s.byAddr[addr[0]] = svc
		klog.Infof("new study for %s", addr[0])
	}
	s.mu.Unlock()
	return svc.GetSuggestions(ctx, req)
}

func (s *studies) ValidateAlgorithmSettings(ctx context.Context, req *api.ValidateAlgorithmSettingsRequest) (*api.ValidateAlgorithmSettingsReply, error) {
	return goptuna.NewSuggestionService().ValidateAlgorithmSettings(ctx, req)
}

func main() {
	listen := flag.String("listen-address", "127.0.0.1:6789", "address to serve the Suggestion API on")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		klog.Fatalf("listen %s: %v", *listen, err)
	}
	srv := grpc.NewServer()
	api.RegisterSuggestionServer(srv, &studies{byAddr: map[string]*goptuna.SuggestionService{}})
	health.RegisterHealthServer(srv, serving{})
	klog.Infof("goptuna suggestion service on %s", *listen)
	if err := srv.Serve(l); err != nil {
		klog.Fatalf("serve: %v", err)
	}
}
