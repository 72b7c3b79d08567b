package wxauth

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/wxauth/caddy-wxauth/internal/apierr"
	"github.com/wxauth/caddy-wxauth/internal/guard"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

// endpoint is one of the plugin's own routes.
type endpoint struct {
	method string // "" when serve checks the method itself
	// auth: the endpoint needs a valid token and gets its identity.
	auth  bool
	serve func(w http.ResponseWriter, r *http.Request, id *guard.Identity) error
}

func (h *Handler) buildRoutes() map[string]endpoint {
	routes := map[string]endpoint{
		h.LoginPath:   {http.MethodPost, false, h.serveLogin},
		h.RefreshPath: {http.MethodPost, true, h.serveRefresh},
		h.LogoutPath:  {http.MethodPost, true, h.serveLogout},
		h.DecryptPath: {http.MethodPost, true, h.serveDecrypt},
		h.PhonePath:   {http.MethodPost, true, h.servePhone},
		h.SessionPath: {http.MethodGet, true, h.serveSession},
	}
	if h.JWKSPath != "" {
		routes[h.JWKSPath] = endpoint{http.MethodGet, false, h.serveJWKS}
	}
	if h.AppAPI != "" {
		routes[h.AppAPI] = endpoint{http.MethodPost, false, h.serveAppAPI}
	}
	for _, wl := range h.web {
		// The routes check their methods themselves, answering pages.
		serve := func(w http.ResponseWriter, r *http.Request, _ *guard.Identity) error {
			wl.routes.Serve(w, r, h.requestLogger(r))
			return nil
		}
		for _, p := range wl.app.Paths() {
			routes[p] = endpoint{"", false, serve}
		}
	}
	return routes
}

func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, ep endpoint) error {
	if ep.method != "" && r.Method != ep.method && !(ep.method == http.MethodGet && r.Method == http.MethodHead) {
		allow := ep.method
		if allow == http.MethodGet {
			allow = "GET, HEAD"
		}
		return apierr.Write(w, apierr.MethodNotAllowed(allow))
	}
	var id *guard.Identity
	if ep.auth {
		tok := h.guard.Find(r)
		if tok == "" {
			return apierr.Write(w, h.guard.Missing(r))
		}
		var aerr *apierr.Error
		if id, aerr = h.guard.Check(r.Context(), tok); aerr != nil {
			return apierr.Write(w, aerr)
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.MaxBodyBytes)
	if err := ep.serve(w, r, id); err != nil {
		if apierr.As(err).Code == apierr.StoreUnavailable.Code {
			metrics.storeEndpoint.Inc() // counted when answered, once
		}
		return apierr.Write(w, err)
	}
	return nil
}

// requestLogger tags endpoint logs with the request id that Caddy's access
// log shows for the same request.
func (h *Handler) requestLogger(r *http.Request) *zap.Logger {
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if id, ok := repl.GetString("http.request.uuid"); ok {
			return h.logger.With(zap.String("request_id", id))
		}
	}
	return h.logger
}

// decodeJSON reads a JSON object body into v.
func decodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	if len(body) == 0 {
		return apierr.InvalidRequest("the request body is empty; send a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return apierr.InvalidRequest("the request body is not a valid JSON object")
	}
	return nil
}

// readFields reads string fields from a JSON or form body; an absent field
// reads as "".
func readFields(r *http.Request, names ...string) ([]string, error) {
	out := make([]string, len(names))
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded", "multipart/form-data":
		var err error
		if ct == "multipart/form-data" {
			// The body is already capped; nothing goes to disk at this size.
			err = r.ParseMultipartForm(64 << 10)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return nil, bodyError(err)
		}
		for i, n := range names {
			out[i] = r.PostForm.Get(n)
		}
		return out, nil
	}
	var m map[string]any
	if err := decodeJSON(r, &m); err != nil {
		return nil, err
	}
	for i, n := range names {
		v, ok := m[n]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, apierr.InvalidRequest(`"` + n + `" must be a string`)
		}
		out[i] = s
	}
	return out, nil
}

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apierr.BodyTooLarge
	}
	return apierr.InvalidRequest("the request body could not be read")
}

// validCode reports whether a WeChat one-time code looks sane before it is
// sent to WeChat: bounded and printable, so junk never costs an API call.
func validCode(code string) bool {
	if code == "" || len(code) > 256 {
		return false
	}
	for i := 0; i < len(code); i++ {
		if c := code[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
