"""SMS providers' signatures against the providers' own documented examples."""

from services.followup.sms_signing import aliyun_percent_encode, aliyun_rpc_signature


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
