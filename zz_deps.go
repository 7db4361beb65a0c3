//go:build tools

// Temporary: pins dependencies while packages are written in parallel.
package main

import (
	_ "github.com/labstack/echo/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/slack-go/slack"
	_ "github.com/spf13/cobra"
	_ "gitlab.com/gitlab-org/api/client-go"
	_ "go.etcd.io/bbolt"
	_ "go.yaml.in/yaml/v3"
	_ "istio.io/client-go/pkg/clientset/versioned"
	_ "k8s.io/api/apps/v1"
	_ "k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	_ "k8s.io/apimachinery/pkg/util/validation"
	_ "k8s.io/client-go/dynamic"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/restmapper"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "k8s.io/client-go/discovery/cached/memory"
	_ "sigs.k8s.io/yaml"
	_ "github.com/Masterminds/sprig/v3"
)
