// Command echoapp is a stand-in for an app behind Warden: it answers every
// request with its method, its path and the identity headers Warden set
// (X-Warden-Agent-Id, -Type, -Subject), so that a guarded route can be
// tried end to end.
//
//	go run ./sdk/examples/echoapp -listen 127.0.0.1:8080
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "`address` to listen on")
	flag.Parse()
	srv := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintf(w, "the app got %s %s as %s %s (subject %q)\n", r.Method, r.URL.RequestURI(),
				r.Header.Get("X-Warden-Agent-Type"), r.Header.Get("X-Warden-Agent-Id"), r.Header.Get("X-Warden-Subject"))
		}),
	}
	log.Printf("echoapp listening on %s", *listen)
	log.Fatal(srv.ListenAndServe())
}
