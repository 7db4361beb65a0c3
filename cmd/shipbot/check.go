package main

import (
	"errors"
	"fmt"

	"github.com/shipbot/shipbot/deployer/config"
	"github.com/shipbot/shipbot/deployer/kube"
)

// checkClusters loads each cluster's kubeconfig and context, as serve
// would, without connecting: a missing file or context is reported now,
// not at start. In-cluster credentials exist only in a pod, so they are
// left to start.
func checkClusters(cfg *config.Config) error {
	var errs []error
	for i, c := range cfg.Clusters {
		if c.InCluster {
			continue
		}
		if _, err := kube.RESTConfig(kube.Source{Name: c.Name, Kubeconfig: c.Kubeconfig, Context: c.Context}); err != nil {
			errs = append(errs, fmt.Errorf("%s: clusters[%d]: %w", cfg.File(), i, err))
		}
	}
	return errors.Join(errs...)
}
