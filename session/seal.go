package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// sealedPrefix marks a session_key stored encrypted (format version 1).
const sealedPrefix = "wxs1:"

// SealSessionKeys makes the Manager store session_keys encrypted with
// AES-256-GCM under key (32 bytes), bound to their openid, so that a copy of
// the store (a Redis dump, a shared folder) does not give them away. Values
// that do not open with the key read as ErrNotFound: the user logs in again.
// Call it before the Manager is used.
func (m *Manager) SealSessionKeys(key []byte) error {
	if len(key) != 32 {
		return fmt.Errorf("session: sealing key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	m.aead = aead
	return nil
}

// seal encrypts a session_key for openid; unsealed Managers store it as is.
func (m *Manager) seal(openid, sessionKey string) ([]byte, error) {
	if m.aead == nil {
		return []byte(sessionKey), nil
	}
	nonce := make([]byte, m.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	// The openid is the additional data: a sealed key moved to another
	// user's entry does not open.
	return append([]byte(sealedPrefix), m.aead.Seal(nonce, nonce, []byte(sessionKey), []byte(openid))...), nil
}

var errUnsealed = errors.New("session: stored session_key does not open with this key")

// open reverses seal.
func (m *Manager) open(openid string, stored []byte) (string, error) {
	if m.aead == nil {
		return string(stored), nil
	}
	n := m.aead.NonceSize()
	if len(stored) < len(sealedPrefix)+n || string(stored[:len(sealedPrefix)]) != sealedPrefix {
		return "", errUnsealed
	}
	body := stored[len(sealedPrefix):]
	plain, err := m.aead.Open(nil, body[:n], body[n:], []byte(openid))
	if err != nil {
		return "", errUnsealed
	}
	return string(plain), nil
}
