"""SMS providers' signatures against the providers' own documented examples."""

from services.followup.sms_signing import (
    aliyun_percent_encode,
    aliyun_rpc_signature,
    tencent_tc3_authorization,
)


def test_aliyun_signature_of_the_documented_send_sms_example() -> None:
    # Alibaba Cloud SMS's signature documentation: AccessKeyId testId, secret testSecret.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert aliyun_rpc_signature(params, "testSecret") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # The signature is not part of what is signed.
    assert aliyun_rpc_signature({**params, "Signature": "x"}, "testSecret") == (
        "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    )
    assert aliyun_rpc_signature(params, "otherSecret") != "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_percent_encoding() -> None:
    assert aliyun_percent_encode("a b*c~") == "a%20b%2Ac~"
    assert aliyun_percent_encode("/") == "%2F"
    assert aliyun_percent_encode("阿") == "%E9%98%BF"


def test_tencent_tc3_signature_of_the_documented_example() -> None:
    # Tencent Cloud API 3.0's signature documentation (CVM DescribeInstances).
    authorization = tencent_tc3_authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
        secret_key="Gu5t9xGARNpq86cd98joQYCN3*******",
        service="cvm",
        host="cvm.tencentcloudapi.com",
        timestamp=1551113065,
        payload='{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], '
        '"Name": "instance-name"}]}',
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )
