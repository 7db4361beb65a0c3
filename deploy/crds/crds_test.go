package crds

import (
	"bytes"
	"encoding/json"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Every file is a CustomResourceDefinition with no field the API does not
// know, in shipbot's group, named as the API requires.
func TestEveryFileIsAStrictCRD(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatal("no CRDs")
	}
	for _, u := range all {
		raw, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		var crd apiextensionsv1.CustomResourceDefinition
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&crd); err != nil {
			t.Errorf("%s: %v", u.GetName(), err)
			continue
		}
		if crd.Kind != "CustomResourceDefinition" || crd.Spec.Group != "shipbot.io" {
			t.Errorf("%s: kind %s group %s, want a CustomResourceDefinition in shipbot.io", u.GetName(), crd.Kind, crd.Spec.Group)
		}
		if want := crd.Spec.Names.Plural + "." + crd.Spec.Group; crd.Name != want {
			t.Errorf("CRD named %s, want %s", crd.Name, want)
		}
	}
}
