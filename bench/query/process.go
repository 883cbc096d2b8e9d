package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/fieldline-iot/fieldline/bench/internal/procstat"
	"github.com/fieldline-iot/fieldline/pkg/plugin"
)

// pluginProcess is the plugin as Grafana runs it: a process of its own (this program started again with
// -plugin-process), serving QueryData over gRPC on a unix socket (hashicorp/go-plugin's transport on Linux). Its
// garbage collector and CPU are its own, as in a real deployment; the bench process plays Grafana.
type pluginProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	conn   *grpc.ClientConn
	dir    string
	client pluginv2.DataClient
	exited chan error // receives the process's exit
}

// startPluginProcess starts the plugin process for database dbName and connects to it.
func startPluginProcess(dbName string) (*pluginProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("plugin process: %w", err)
	}
	dir, err := os.MkdirTemp("", "fieldline-bench-query-")
	if err != nil {
		return nil, fmt.Errorf("plugin process: %w", err)
	}
	sock := filepath.Join(dir, "plugin.sock")
	p := &pluginProcess{dir: dir, cmd: exec.Command(self, "-plugin-process", sock, "-db", dbName)}
	p.cmd.Stdout, p.cmd.Stderr = os.Stderr, os.Stderr
	if p.stdin, err = p.cmd.StdinPipe(); err != nil { // the process ends when this pipe closes
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("plugin process: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("plugin process: %w", err)
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-p.exited:
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("plugin process exited before serving: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("plugin process: no socket after 30 s")
		}
	}
	p.conn, err = grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("plugin process: %w", err)
	}
	p.client = pluginv2.NewDataClient(p.conn)
	return p, nil
}

// cpu is the plugin process's CPU time so far (0 where /proc is not available).
func (p *pluginProcess) cpu() time.Duration {
	d, _ := procstat.CPU(p.cmd.Process.Pid)
	return d
}

// peakRSS is the plugin process's peak RSS in bytes (0 where /proc is not available).
func (p *pluginProcess) peakRSS() int64 {
	n, _ := procstat.PeakRSS(p.cmd.Process.Pid)
	return n
}

func (p *pluginProcess) stop() {
	if p.conn != nil {
		_ = p.conn.Close()
	}
	_ = p.stdin.Close() // the process stops serving, writes its profile if asked to and exits
	select {
	case err := <-p.exited:
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: plugin process:", err)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
	}
	_ = os.RemoveAll(p.dir)
}

// servePluginProcess is the plugin process: it serves ds's QueryData on the unix socket sock (the SDK's gRPC
// adapter, as backend.Serve registers it) until its standard input closes.
func servePluginProcess(ctx context.Context, ds *plugin.Datasource, sock string) error {
	opts, err := backend.GRPCServeOpts(backend.ServeOpts{QueryDataHandler: ds})
	if err != nil {
		return err
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20))
	pluginv2.RegisterDataServer(srv, opts.DataServer)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		srv.Stop()
	}()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	return srv.Serve(l)
}
