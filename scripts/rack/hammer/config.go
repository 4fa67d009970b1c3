package main

// /etc/metal/install.yaml as the hammer writes it: its legacy InstallerConfig, with the field
// order and yaml tags of the hammer's struct and metal-go's models, marshalled by yaml.v3 (so
// unset pointers are null, empty lists [], 4-space indents, and strings quoted exactly where
// yaml.v3 quotes them). The machine comes from the test host as JSON, the way the hammer gets
// the allocation from metal-api; root_uuid, timestamp and console are the hammer's own.

import (
	"bytes"

	"gopkg.in/yaml.v3"
)

// Machine is what the test host serves as the machine's allocation and hardware.
type Machine struct {
	Hostname    string       `json:"hostname"`
	Networks    []*Network   `json:"networks"`
	MachineUUID string       `json:"machineuuid"`
	SSHPubKeys  []string     `json:"sshpubkeys"`
	Password    string       `json:"password"`
	Nics        []*Nic       `json:"nics"`
	Role        string       `json:"role"`
	DNSServers  []*DNSServer `json:"dns_servers"`
	NTPServers  []*NTPServer `json:"ntp_servers"`
	Userdata    string       `json:"userdata"`
	// firewalls: the allocation's VPN and firewall rules, passed on as the hammer does
	VPN           *VPN           `json:"vpn"`
	FirewallRules *FirewallRules `json:"firewall_rules"`
}

type Network struct {
	Asn                 *int64   `json:"asn" yaml:"asn"`
	Destinationprefixes []string `json:"destinationprefixes" yaml:"destinationprefixes"`
	Ips                 []string `json:"ips" yaml:"ips"`
	Nat                 *bool    `json:"nat" yaml:"nat"`
	Networkid           *string  `json:"networkid" yaml:"networkid"`
	Networktype         *string  `json:"networktype" yaml:"networktype"`
	Prefixes            []string `json:"prefixes" yaml:"prefixes"`
	Private             *bool    `json:"private" yaml:"private"`
	Projectid           *string  `json:"projectid" yaml:"projectid"`
	Underlay            *bool    `json:"underlay" yaml:"underlay"`
	Vrf                 *int64   `json:"vrf" yaml:"vrf"`
}

type Nic struct {
	Identifier string  `json:"identifier" yaml:"identifier"`
	Mac        *string `json:"mac" yaml:"mac"`
	Name       *string `json:"name" yaml:"name"`
	Neighbors  []*Nic  `json:"neighbors" yaml:"neighbors"`
}

type DNSServer struct {
	IP *string `json:"ip" yaml:"ip"`
}

type NTPServer struct {
	Address *string `json:"address" yaml:"address"`
}

type VPN struct {
	Address   *string `json:"address" yaml:"address"`
	AuthKey   *string `json:"auth_key" yaml:"auth_key"`
	Connected *bool   `json:"connected" yaml:"connected"`
}

type FirewallRules struct {
	Egress  []any `json:"egress" yaml:"egress"`
	Ingress []any `json:"ingress" yaml:"ingress"`
}

// InstallerConfig is the hammer's legacy install.yaml, field by field in its order.
type InstallerConfig struct {
	Hostname      string         `yaml:"hostname"`
	Networks      []*Network     `yaml:"networks"`
	MachineUUID   string         `yaml:"machineuuid"`
	SSHPublicKey  string         `yaml:"sshpublickey"`
	Password      string         `yaml:"password"`
	Console       string         `yaml:"console"`
	Timestamp     string         `yaml:"timestamp"`
	Nics          []*Nic         `yaml:"nics"`
	VPN           *VPN           `yaml:"vpn"`
	Role          string         `yaml:"role"`
	RaidEnabled   bool           `yaml:"raidenabled"`
	RootUUID      string         `yaml:"root_uuid"`
	FirewallRules *FirewallRules `yaml:"firewall_rules"`
	DNSServers    []*DNSServer   `yaml:"dns_servers"`
	NTPServers    []*NTPServer   `yaml:"ntp_servers"`
}

// onlyNicsWithNeighbors keeps the NICs whose neighbours all have a MAC, with their first
// neighbour only (the hammer's onlyNicsWithNeighborsLegacy).
func onlyNicsWithNeighbors(nics []*Nic) []*Nic {
	result := []*Nic{}
	for _, nic := range nics {
		if len(nic.Neighbors) == 0 {
			continue
		}
		skip := false
		for _, n := range nic.Neighbors {
			if n.Mac == nil || *n.Mac == "" {
				skip = true
			}
		}
		if skip {
			continue
		}
		result = append(result, &Nic{
			Mac: nic.Mac, Name: nic.Name, Identifier: nic.Identifier,
			Neighbors: []*Nic{{Mac: nic.Neighbors[0].Mac, Name: nic.Neighbors[0].Name}},
		})
	}
	return result
}

func legacyConfig(m Machine, rootUUID, timestamp, console string) InstallerConfig {
	key := ""
	for i, k := range m.SSHPubKeys {
		if i > 0 {
			key += "\n"
		}
		key += k
	}
	return InstallerConfig{
		Hostname:      m.Hostname,
		Networks:      m.Networks,
		MachineUUID:   m.MachineUUID,
		SSHPublicKey:  key,
		Password:      m.Password,
		Console:       console,
		Timestamp:     timestamp,
		Nics:          onlyNicsWithNeighbors(m.Nics),
		VPN:           m.VPN,
		Role:          m.Role,
		RootUUID:      rootUUID,
		FirewallRules: m.FirewallRules,
		DNSServers:    m.DNSServers,
		NTPServers:    m.NTPServers,
	}
}

func installYAML(m Machine, rootUUID, timestamp, console string) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(legacyConfig(m, rootUUID, timestamp, console)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
