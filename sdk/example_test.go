package sdk_test

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenauthz/warden/sdk"
	"github.com/wardenauthz/warden/sdk/model"
)

// A client holding a profile asks Warden whether it may act.
func ExampleClient_Check() {
	ctx := context.Background()
	c, err := root.Client()
	if err != nil {
		panic(err)
	}
	resource := "/account/" + c.Account() + "/subscription/sub-0000000000000001/"
	d, err := c.Check(ctx, "function:get", resource, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Allow, d.Status, d.Grant.Action)
	// Output: true 200 *
}

// A token minted with inline permissions may only do what they allow.
func ExampleProfile_Mint() {
	ctx := context.Background()
	resource := "/account/" + root.Account + "/subscription/sub-0000000000000001/"
	token, err := root.Mint(5*time.Minute, []model.Permission{{Action: "function:get", Resource: resource}})
	if err != nil {
		panic(err)
	}
	c, _ := sdk.NewClient(sdk.Config{BaseURL: root.BaseURL, Token: sdk.StaticToken(token)})
	for _, action := range []string{"function:get", "function:put"} {
		d, err := c.Check(ctx, action, resource+"function/f", 0)
		if err != nil {
			panic(err)
		}
		fmt.Println(action, d.Allow, d.Status)
	}
	// Output:
	// function:get true 200
	// function:put false 403
}
