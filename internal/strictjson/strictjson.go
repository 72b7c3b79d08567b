// Package strictjson decodes a JSON object so that every reader of the
// same bytes reads the same thing: exact field names, no name twice, one
// object and nothing after it, numbers as json.Number.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ErrNotObject is Decode's answer to a body that is not one JSON object.
var ErrNotObject = errors.New("the body is not a JSON object")

// Decode decodes raw, which must be exactly one JSON object, into v
// with numbers as json.Number. encoding/json alone would take "Action" for
// "action" and let a repeated name win silently, so two readers of one
// signed body could disagree on what it says; here the top-level names must
// be exactly one of fields (any name when fields is empty, as for a claims
// object) and no object in raw may repeat a name.
func Decode(raw []byte, v any, fields ...string) error {
	if err := checkNames(raw, fields); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("field %q has the wrong type", te.Field)
		}
		return ErrNotObject
	}
	return nil
}

// nameFrame is an object or array being walked by checkNames.
type nameFrame struct {
	seen    map[string]bool // nil for an array
	wantKey bool            // the next token of an object is a name
}

// checkNames walks raw's tokens: one top-level object, its names among
// fields (when given), no name twice in any object, nothing after it.
func checkNames(raw []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []nameFrame
	done := false
	for {
		tok, err := dec.Token()
		if err == io.EOF && done {
			return nil
		}
		if err != nil || done {
			return ErrNotObject
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if name, ok := tok.(string); ok {
				if err := takeName(&stack[n-1], name, n == 1, fields); err != nil {
					return err
				}
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, nameFrame{seen: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			if len(stack) == 0 {
				return ErrNotObject
			}
			stack = append(stack, nameFrame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if len(stack) == 0 {
				return ErrNotObject
			}
		}
		// A value has ended: its object expects a name next.
		if n := len(stack); n == 0 {
			done = true
		} else if stack[n-1].seen != nil {
			stack[n-1].wantKey = true
		}
	}
}

// takeName records name in its object, refusing a repeat, and at the top
// level a name that is not one of fields.
func takeName(f *nameFrame, name string, top bool, fields []string) error {
	if top && len(fields) > 0 && !slices.Contains(fields, name) {
		return fmt.Errorf("field %s is not known (the fields are %s, spelled exactly so)", Quote(name), strings.Join(fields, ", "))
	}
	if f.seen[name] {
		return fmt.Errorf("name %s appears twice in one object", Quote(name))
	}
	f.seen[name] = true
	f.wantKey = false
	return nil
}

// Quote quotes a name the caller sent, for a message, cut short: a name
// can be as long as the body, the message should stay readable.
func Quote(name string) string {
	const limit = 64
	if len(name) > limit {
		return fmt.Sprintf("%q...", name[:limit])
	}
	return fmt.Sprintf("%q", name)
}
