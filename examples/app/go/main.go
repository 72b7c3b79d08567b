// Command app is an example app for caddy-wxauth: it verifies the signed
// events of app_hook, stores users in a JSON file and answers claims, and
// its admin commands call wxauth's app_api.
//
//	WXAUTH_SECRET=whsec_... go run .                  serve /wxauth
//	go run . ban <openid>                             refuse its logins, end its sessions
//	go run . unban <openid>                           allow its logins again
//	go run . role <openid> <role>                     new role, in the store and at once in every session
//	go run . notify <openid> <template_id> <text>     a subscribe message, with wxauth's access_token
//
// Environment: WXAUTH_SECRET (the secret of app_hook), PORT (default 3000;
// 0 picks a free one), STORE (default users.json), WXAUTH_API (the URL of
// app_api, e.g. http://127.0.0.1:8080/wx/app, for the admin commands),
// WECHAT_API (default https://api.weixin.qq.com; wxmock's URL in the demo).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = "usage: app [serve] | ban <openid> | unban <openid> | role <openid> <role> | notify <openid> <template_id> <text>"

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	secret := getenv("WXAUTH_SECRET")
	storeFile := getenv("STORE")
	if storeFile == "" {
		storeFile = "users.json"
	}
	cmd := "serve"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch {
	case cmd == "serve" && len(args) <= 1:
		if !strings.HasPrefix(secret, "whsec_") {
			fmt.Fprintln(stderr, "set WXAUTH_SECRET to the whsec_... secret of the app_hook block")
			return 2
		}
		port := getenv("PORT")
		if port == "" {
			port = "3000"
		}
		if err := serve(secret, storeFile, port, stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case (cmd == "ban" || cmd == "unban") && len(args) == 2, cmd == "role" && len(args) == 3, cmd == "notify" && len(args) == 4:
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	api := &WxauthAPI{URL: getenv("WXAUTH_API"), Secret: secret}
	if cmd != "unban" && (!strings.HasPrefix(secret, "whsec_") || api.URL == "") {
		fmt.Fprintln(stderr, "set WXAUTH_SECRET (whsec_...) and WXAUTH_API (the app_api URL)")
		return 2
	}
	if cmd == "notify" {
		wechatAPI := getenv("WECHAT_API")
		if wechatAPI == "" {
			wechatAPI = "https://api.weixin.qq.com"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// thing1 is the template's first field; a real template names its own.
		data := map[string]any{"thing1": map[string]any{"value": args[3]}}
		if err := api.SendSubscribeMessage(ctx, wechatAPI, args[1], args[2], data); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "notify %s: done\n", args[1])
		return 0
	}
	if err := admin(api, storeFile, args); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s: done\n", cmd, args[1])
	return 0
}

func admin(api *WxauthAPI, storeFile string, args []string) error {
	cmd, openid := args[0], args[1]
	// The store first: a login that races the ban is refused by the hook,
	// and the sessions that exist are ended next.
	err := Update(storeFile, func(db *Store) error {
		u := db.Users[openid]
		if u == nil {
			return fmt.Errorf("no user %s in %s", openid, storeFile)
		}
		if cmd == "role" {
			u.Role = args[2]
		} else {
			u.Banned = cmd == "ban"
		}
		return nil
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch cmd {
	case "ban":
		return api.EndSessions(ctx, openid)
	case "role":
		return api.SetClaims(ctx, openid, map[string]any{"role": args[2]})
	}
	return nil
}

func serve(secret, storeFile, port string, stdout io.Writer) error {
	app, err := NewApp(secret, storeFile)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	log.SetOutput(stdout)
	fmt.Fprintf(stdout, "listening on http://%s/wxauth, store %s\n", ln.Addr(), storeFile)
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
