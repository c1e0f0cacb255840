//go:build tools

package main
import (
 _ "github.com/eclipse/paho.golang/packets"
 _ "github.com/eclipse/paho.golang/paho"
 _ "github.com/lestrrat-go/jwx/v2/jwt"
 _ "github.com/spf13/viper"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "pgregory.net/rapid"
 _ "github.com/coder/websocket"
 _ "golang.org/x/sync/singleflight"
)
func main(){}
