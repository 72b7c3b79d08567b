package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
)

// appCall and appCallFields have the shape of the root package's app_api
// call body, the decoder's strictest user.
type appCall struct {
	Action string         `json:"action"`
	OpenID string         `json:"openid"`
	Claims map[string]any `json:"claims"`
}

var appCallFields = []string{"action", "openid", "claims"}

func TestDecodeAppCall(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		refuse string // a part of the error, "" when accepted
	}{
		{"exact names", `{"action":"set_claims","openid":"o1","claims":{"uid":42}}`, ""},
		{"some names", `{"action":"end_sessions","openid":"o1"}`, ""},
		{"whitespace around", " \n{\"action\":\"end_sessions\"}\n ", ""},
		{"folded case", `{"Action":"set_claims","openid":"o1","claims":{}}`, `field "Action" is not known`},
		{"upper case", `{"action":"end_sessions","OPENID":"o1"}`, `field "OPENID" is not known`},
		{"unknown field", `{"action":"end_sessions","openid":"o1","reason":"ban"}`, `field "reason" is not known`},
		{"repeated field", `{"action":"end_sessions","openid":"o1","openid":"o2"}`, `"openid" appears twice`},
		{"repeated by escape", `{"action":"end_sessions","openid":"o1","open\u0069d":"o2"}`, `"openid" appears twice`},
		{"repeated claim", `{"action":"set_claims","openid":"o1","claims":{"uid":1,"uid":2}}`, `"uid" appears twice`},
		{"repeated deeper", `{"action":"set_claims","openid":"o1","claims":{"a":[{"b":1,"b":2}]}}`, `"b" appears twice`},
		{"a second value", `{"action":"end_sessions","openid":"o1"} {"openid":"o2"}`, "not a JSON object"},
		{"trailing garbage", `{"action":"end_sessions","openid":"o1"}x`, "not a JSON object"},
		{"array", `[{"action":"end_sessions"}]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"string", `"x"`, "not a JSON object"},
		{"empty", ``, "not a JSON object"},
		{"cut short", `{"action":"end_sessions"`, "not a JSON object"},
		{"wrong type", `{"action":5}`, `field "action" has the wrong type`},
		{"claims not an object", `{"action":"set_claims","claims":["a"]}`, `field "claims" has the wrong type`},
		{"long name cut short", `{"` + strings.Repeat("x", 200) + `":1}`, `xx"... is not known`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var call appCall
			err := Decode([]byte(c.body), &call, appCallFields...)
			switch {
			case c.refuse == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse)):
				t.Fatalf("got %v, want an error with %q", err, c.refuse)
			case err != nil && len(err.Error()) > 300:
				t.Fatalf("message too long: %d bytes", len(err.Error()))
			}
		})
	}
	var call appCall
	if err := Decode([]byte(`{"action":"set_claims","openid":"o1","claims":{"uid":12345678901234567890}}`), &call, appCallFields...); err != nil ||
		call.Action != "set_claims" || call.OpenID != "o1" || call.Claims["uid"] != json.Number("12345678901234567890") {
		t.Fatalf("decoded %+v, %v", call, err)
	}
}

// A hook answer is a claims object: any name, each once.
func TestDecodeClaims(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		refuse string
	}{
		{"claims", `{"uid":42,"Tier":"gold","vip":true,"old":null}`, ""},
		{"empty object", `{}`, ""},
		{"repeated claim", `{"uid":1,"uid":2}`, `"uid" appears twice`},
		{"a second object", `{"uid":1}{"uid":2}`, "not a JSON object"},
		{"array", `[1]`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			err := Decode([]byte(c.body), &m)
			switch {
			case c.refuse == "" && (err != nil || m == nil):
				t.Fatalf("refused: %v", err)
			case c.refuse != "" && (err == nil || !strings.Contains(err.Error(), c.refuse)):
				t.Fatalf("got %v, want an error with %q", err, c.refuse)
			}
		})
	}
	var m map[string]any
	if err := Decode([]byte(`{"uid":42}`), &m); err != nil || m["uid"] != json.Number("42") {
		t.Fatalf("numbers are not json.Number: %#v, %v", m, err)
	}
}
